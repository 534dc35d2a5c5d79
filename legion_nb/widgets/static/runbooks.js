// The runbook panel: runbooks, a parameters form, a run with live cell progress, and the history.
// Mirrors legion_nb/widgets/runbooks.py: title, status, runbooks, selected, values, dry_run, running,
// progress, runs, failure. The Run button sends one "run" event; everything else is synced traits.

function runbookForm(model) {
  const books = model.get("runbooks");
  const selected = model.get("selected");
  const book = books.find((b) => b.name === selected);
  const picker = lnbEl("select", "lnb-runbook-select", ...books.map((b) => {
    const option = lnbEl("option", null, b.name);
    option.value = b.name;
    option.selected = b.name === selected;
    return option;
  }));
  picker.addEventListener("change", () => {
    model.set("selected", picker.value);
    model.set("values", {});
    model.save_changes();
  });
  const parts = [lnbEl("div", "lnb-counts", lnbEl("span", "lnb-label", "Runbook"), picker)];
  if (!book) return parts;
  parts.push(lnbEl("p", "lnb-runbook-purpose", ...lnbInlineCode(book.purpose)));
  const values = model.get("values");
  const rows = Object.entries(book.parameters).filter(([name]) => name !== "dry_run").map(([name, spec]) => {
    const input = lnbEl("input", "lnb-runbook-input");
    input.name = name;
    input.placeholder = spec.default;
    input.value = values[name] ?? "";
    input.addEventListener("change", () => {
      model.set("values", { ...model.get("values"), [name]: input.value });
      model.save_changes();
    });
    return lnbEl("tr", null, lnbEl("td", "lnb-name", name), lnbEl("td", null, input), lnbEl("td", "lnb-label", spec.help));
  });
  parts.push(lnbEl("table", "lnb-table lnb-runbook-form", lnbEl("tbody", null, ...rows)));
  const dry = lnbEl("input", "lnb-runbook-dry");
  dry.type = "checkbox";
  dry.checked = model.get("dry_run");
  dry.addEventListener("change", () => {
    model.set("dry_run", dry.checked);
    model.save_changes();
  });
  const run = lnbEl("button", "lnb-runbook-run", model.get("running") ? "Running\u2026" : "Run");
  run.disabled = model.get("running");
  run.addEventListener("click", () => model.send({ event: "run" }));
  parts.push(lnbEl("div", "lnb-counts", lnbEl("label", null, dry, " dry run"), run));
  return parts;
}

// A runbook's purpose is Markdown from its notebook: `code` spans show as code, not as backticks.
function lnbInlineCode(text) {
  return String(text ?? "").split("`").map((part, i) => (i % 2 === 1 ? lnbEl("code", null, part) : part));
}

// An ISO 8601 UTC instant as an operator reads it: "2026-12-05 18:20:24 UTC" (whole seconds).
function lnbWhen(iso) {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|\+00:00)$/.exec(String(iso ?? ""));
  return match ? `${match[1]} ${match[2]} UTC` : lnbText(iso);
}

// The runs table is laid out fixed (lnbTable: lnb-fixed) so it fits the panel: the id, runbook,
// status and start get the width their values need (a run id on one line, a start as date over
// time), and the failing cell and its error share the rest and wrap, rather than the error being
// pushed past the panel's right edge.
const RUN_COLUMNS = [
  ["Run", (r) => lnbEl("span", "lnb-name lnb-nowrap", r.id), "17.5em"],
  ["Runbook", (r) => r.runbook, "9em"],
  ["Status", (r) => lnbBadge("state", r.status), "6.5em"],
  ["Dry run", (r) => (r.dry_run ? "yes" : ""), "5.2em"],
  ["By", (r) => r.operator, "4.5em"],
  ["Started", (r) => lnbWhenLines(r.start), "8em"],
  ["Failed at", (r) => lnbText(r.failed_at), "7.5em"],
  ["Error", (r) => (r.error ? lnbEl("span", "lnb-error", r.error) : lnbText("")), "auto"],
];

// A start as its date over its time, each kept whole, so the column stays narrow.
function lnbWhenLines(iso) {
  const text = lnbWhen(iso);
  const match = /^(\S+) (.+ UTC)$/.exec(text);
  if (!match) return text;
  return lnbEl("span", null, lnbEl("span", "lnb-nowrap", match[1]), " ", lnbEl("span", "lnb-nowrap", match[2]));
}

function runbookProgress(model) {
  const progress = model.get("progress");
  if (!progress || progress.cells === undefined) return null;
  const current = progress.current === null || progress.current === undefined ? "" : `, cell ${progress.current} running`;
  const text = `${progress.done}/${progress.cells || "?"} cells done${current}`;
  const bar = lnbEl("progress", "lnb-runbook-progress");
  bar.max = progress.cells || 1;
  bar.value = progress.done;
  return lnbEl("div", "lnb-counts", bar, lnbEl("span", "lnb-runbook-progress-text", text));
}

function runbookFailure(model) {
  const failure = model.get("failure");
  if (!failure || failure.index === undefined) return null;
  return lnbEl("div", "lnb-runbook-failure",
    lnbEl("p", "lnb-error", `${failure.id} failed at ${failure.where ?? `cell ${failure.index}`} - ${failure.error}`),
    lnbEl("pre", "lnb-runbook-source", failure.source));
}

export default {
  render({ model, el }) {
    const traits = ["status", "runbooks", "selected", "values", "dry_run", "running", "progress", "runs", "failure"];
    return lnbMount(model, el, "lnb-runbooks", traits, () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const runs = model.get("runs");
      const history = runs.length === 0
        ? lnbEl("p", "lnb-empty", "No runs recorded yet.")
        : lnbTable("lnb-runbook-runs", RUN_COLUMNS, runs.map((r) => ({ ...r, name: r.id })));
      return [header, ...runbookForm(model), runbookProgress(model), runbookFailure(model),
        lnbEl("h4", "lnb-subtitle", "Runs"), history].filter((part) => part !== null);
    });
  },
};
