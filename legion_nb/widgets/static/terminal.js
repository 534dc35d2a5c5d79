// The notebook terminal: xterm.js showing a shell on a node, driven by legion_nb/widgets/terminal.py.
//
// xterm.js is bundled with the package (static/vendor/xterm), never fetched from a CDN. anywidget
// loads this module from a string, so a relative import cannot reach the vendored files; Python puts
// their source in front of this code as XTERM_SOURCE and FIT_SOURCE, and each is imported once per
// page from a blob: URL.
//
// Data flow: keystrokes and size changes go to Python as custom messages ({type: "input", data} and
// {type: "resize", cols, rows}); output comes back only through the synced traits "scrollback" (the
// last bounded stretch of output) and "produced" (how many characters the shell has produced in all),
// so a view opened later - a redisplay, a reloaded page - draws the scrollback and carries on.

let lnbXterm = null;

function lnbLoadXterm() {
  if (lnbXterm === null) {
    const load = (source) => import(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    lnbXterm = Promise.all([load(XTERM_SOURCE), load(FIT_SOURCE)]);
  }
  return lnbXterm;
}

async function render({ model, el }) {
  const [{ Terminal }, { FitAddon }] = await lnbLoadXterm();
  const status = document.createElement("div");
  status.className = "lnb-terminal-status";
  const screen = document.createElement("div");
  screen.className = "lnb-terminal-screen";
  el.classList.add("lnb-terminal");
  el.append(status, screen);

  const term = new Terminal({
    cols: model.get("cols"),
    rows: model.get("rows"),
    scrollback: 5000,
    fontSize: 13,
    fontFamily: "Menlo, Consolas, 'DejaVu Sans Mono', monospace",
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);

  // Characters are counted as code points on both sides (Array.from), as Python counts them.
  let shown = model.get("produced") - Array.from(model.get("scrollback")).length;
  const draw = () => {
    const total = model.get("produced");
    const missing = total - shown;
    if (missing <= 0) return;
    const chars = Array.from(model.get("scrollback"));
    // Fell further behind than the scrollback reaches: start over from what is kept.
    if (missing > chars.length) term.reset();
    term.write(chars.slice(Math.max(chars.length - missing, 0)).join(""));
    shown = total;
  };
  const showStatus = () => {
    const text = model.get("status");
    status.textContent = `${model.get("node")}: ${text}`;
    status.dataset.status = text.split(":")[0].split(" ")[0];
  };
  draw();
  showStatus();

  term.onData((data) => model.send({ type: "input", data }));
  // The size xterm.js shows, on the element for tests and styling (the node's PTY follows it).
  const showSize = () => {
    el.dataset.cols = String(term.cols);
    el.dataset.rows = String(term.rows);
  };
  term.onResize(({ cols, rows }) => {
    showSize();
    model.send({ type: "resize", cols, rows });
  });
  const refit = () => {
    if (screen.clientWidth > 0 && screen.clientHeight > 0) fit.fit();
  };
  showSize();
  const observer = new ResizeObserver(refit);
  observer.observe(screen);
  refit();

  model.on("change:produced", draw);
  model.on("change:status", showStatus);
  return () => {
    observer.disconnect();
    model.off("change:produced", draw);
    model.off("change:status", showStatus);
    term.dispose();
  };
}

export default { render };
