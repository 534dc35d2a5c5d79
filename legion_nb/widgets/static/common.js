// Helpers shared by the legion-nb panels. Python prepends this file to each panel's module
// (legion_nb/widgets/panel.py: esm_of), so it declares functions and exports nothing itself.
// Every value from the engine is put on the page as text (textContent), never parsed as HTML:
// resource names and provider errors come from outside and must not become markup.

function lnbEl(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A status word as a coloured badge; the CSS colours it by family and value (lnb-state-failed...).
function lnbBadge(family, value) {
  const slug = String(value || "none").toLowerCase().replace(/[^a-z0-9]+/g, "-");
  const badge = lnbEl("span", `lnb-badge lnb-${family} lnb-${family}-${slug}`, value || "-");
  badge.dataset[family] = value || "";
  return badge;
}

// The panel's header: its title, the revision it shows and the feed's health.
function lnbHeader(model) {
  const status = model.get("feed_status");
  const revision = model.get("revision");
  const parts = [lnbEl("span", "lnb-title", model.get("title"))];
  if (model.get("locked")) parts.push(lnbEl("span", "lnb-locked", "locked"));
  if (revision !== null && revision !== undefined) parts.push(lnbEl("span", "lnb-revision", `revision ${revision}`));
  const feed = lnbEl("span", `lnb-feed lnb-feed-${status.split(":")[0]}`, status);
  feed.title = "how the panel's connection to the engine stands";
  parts.push(feed);
  return lnbEl("div", "lnb-header", ...parts);
}

// A table: columns are [heading, (row) => cell content, width?, cell class?]; rows get data-name for tests and
// links; ``after(row)``, when given, may return a row to put right under it (a resource's warnings).
// When every column names a width (a CSS length, or "auto" for an equal share of what the others
// leave), the widths go into a <colgroup> and the table is laid out fixed (lnb-fixed): columns then
// keep their widths from one redraw to the next instead of following whatever values the latest
// snapshot happens to hold.
// A resource's warnings as a full-width row under it: a marker and each message in words the
// operator reads, never a tooltip or a hidden attribute (null when the resource has none).
function lnbWarningRow(resource, span) {
  const warnings = resource.warnings || [];
  if (warnings.length === 0) return null;
  const lines = warnings.map((warning) => {
    const line = lnbEl("div", "lnb-warning", lnbEl("span", "lnb-badge lnb-warning-badge", "\u26a0 warning"), " ", warning.message);
    line.dataset.code = warning.code;
    return line;
  });
  const cell = lnbEl("td", "lnb-warnings", ...lines);
  cell.colSpan = span;
  const tr = lnbEl("tr", "lnb-warning-row", cell);
  tr.dataset.warningFor = resource.name;
  return tr;
}

// The <colgroup> of a table laid out fixed (lnb-fixed): one width per column, a CSS length or
// "auto" for an equal share of what the others leave.
function lnbColgroup(widths) {
  return lnbEl("colgroup", null, ...widths.map((width) => {
    const col = lnbEl("col");
    if (width !== "auto") col.style.width = width;
    return col;
  }));
}

function lnbTable(className, columns, rows, rowClass, after) {
  const head = lnbEl("tr", null, ...columns.map(([heading]) => lnbEl("th", null, heading)));
  const fixed = columns.length > 0 && columns.every(([, , width]) => width);
  const cols = fixed ? lnbColgroup(columns.map(([, , width]) => width)) : null;
  const body = lnbEl("tbody");
  for (const row of rows) {
    const tr = lnbEl("tr", rowClass ? rowClass(row) : null, ...columns.map(([, cell, , cellClass]) => lnbEl("td", cellClass || null, cell(row))));
    if (row.name !== undefined) tr.dataset.name = row.name;
    body.append(tr);
    const extra = after ? after(row) : null;
    if (extra) body.append(extra);
  }
  return lnbEl("table", `lnb-table ${fixed ? "lnb-fixed " : ""}${className}`, cols, lnbEl("thead", null, head), body);
}

// Draw with `draw` now and again whenever one of `traits` changes; one message that changes several
// traits (the Python side sends each update inside hold_sync) is drawn once, in a microtask.
function lnbMount(model, el, rootClass, traits, draw) {
  const root = lnbEl("div", `lnb-panel ${rootClass}`);
  el.append(root);
  let queued = false;
  const redraw = () => {
    queued = false;
    root.replaceChildren(...draw());
    root.dataset.revision = String(model.get("revision") ?? "");
    root.dataset.feed = model.get("feed_status");
  };
  const schedule = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(redraw);
  };
  const all = ["title", "locked", "revision", "feed_status", ...traits];
  for (const trait of all) model.on(`change:${trait}`, schedule);
  redraw();
  return () => {
    for (const trait of all) model.off(`change:${trait}`, schedule);
  };
}

// The Plotly charts a panel's Python side shows under its view are drawn as wide as the page says
// the panel is (legion_nb/widgets/width.py): a FigureWidget drawn before its view is attached keeps
// Plotly's default 700 px otherwise. The width goes to the "width" trait whenever it changes (the
// view attached, the output area resized). Returns the view's cleanup: stop reporting, then
// `unmount` (what lnbMount returned).
function lnbReportWidth(model, el, unmount) {
  const observer = new ResizeObserver(() => {
    const width = Math.floor(el.getBoundingClientRect().width);
    if (width <= 0 || width === model.get("width")) return;
    model.set("width", width);
    model.save_changes();
  });
  observer.observe(el);
  return () => {
    observer.disconnect();
    unmount();
  };
}

function lnbText(value) {
  return value === null || value === undefined || value === "" ? "\u2014" : value;
}

// An identifier (a phase such as satellite_bootstrap, a kind such as dns_zone) that may wrap after
// its underscores and dots when its column is narrow, instead of being cut in the middle of a word.
function lnbWords(value) {
  if (value === null || value === undefined || value === "") return lnbText(value);
  const parts = String(value).split(/(?<=[_.])/);
  const out = document.createDocumentFragment();
  parts.forEach((part, i) => {
    if (i > 0) out.append(lnbEl("wbr"));
    out.append(part);
  });
  return out;
}

// A decimal money string as people read it: at least two decimals, the exact value kept (trailing
// zeros beyond the cents go: "11.3700000000" reads "11.37", "0" reads "0.00", "3.79125" stays).
function lnbMoney(value) {
  if (value === null || value === undefined || value === "") return lnbText(value);
  const match = /^(-?\d+)(?:\.(\d*))?$/.exec(String(value));
  if (!match) return String(value);
  const decimals = (match[2] || "").replace(/0+$/, "").padEnd(2, "0");
  return `${match[1]}.${decimals}`;
}
