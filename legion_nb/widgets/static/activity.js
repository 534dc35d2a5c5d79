// The activity panel: counts per lifecycle state and per pending action, the operations running
// now, and the latest activity lines. Mirrors legion_nb/widgets/activity.py: title, locked,
// revision, feed_status, total, settled, running, last_operation, states, actions, operations,
// recent.

// Widths are shares of the panel, so a column is as wide in every redraw (lnbTable: lnb-fixed).
const OPERATION_COLUMNS = [
  ["Kind", (o) => lnbWords(o.kind), "12%"],
  ["Name", (o) => lnbEl("span", "lnb-name", lnbWords(o.name)), "22%"],
  ["Operation", (o) => lnbWords(o.operation), "20%"],
  ["Substage", (o) => lnbWords(o.substage), "22%"],
  ["Waiting for", (o) => lnbText(o.waiting), "24%"],
];

function activityCounts(label, family, counts) {
  const items = Object.entries(counts).map(([value, n]) => lnbEl("span", "lnb-count", lnbBadge(family, value), ` ${n}`));
  return lnbEl("div", "lnb-counts", lnbEl("span", "lnb-label", label), ...(items.length ? items : [lnbText("")]));
}

export default {
  render({ model, el }) {
    const traits = ["total", "settled", "running", "last_operation", "states", "actions", "operations", "recent"];
    return lnbMount(model, el, "lnb-activity", traits, () => {
      const operations = model.get("operations");
      const recent = model.get("recent");
      // A locked state shows no resources: say so rather than "0 resources", which reads as empty.
      const locked = model.get("locked") && model.get("total") === 0;
      const total = lnbEl("div", "lnb-total", locked ? "The state is locked." : `${model.get("total")} resources`);
      const settled = lnbEl("span", "lnb-settled", `${model.get("settled")} settled`);
      const running = model.get("running");
      const last = model.get("last_operation");
      const engineLine = running
        ? lnbEl("div", "lnb-engine lnb-engine-running", "Running: ", running)
        : lnbEl("div", "lnb-engine", last ? `Idle; last: ${last}` : "Idle");
      const parts = [
        lnbHeader(model),
        lnbEl("div", "lnb-counts", total, locked ? null : settled),
        engineLine,
        activityCounts("By state", "state", model.get("states")),
        activityCounts("Pending", "action", model.get("actions")),
        lnbEl("h4", "lnb-subtitle", "Current operations"),
        operations.length
          ? lnbTable("lnb-operations-table", OPERATION_COLUMNS, operations)
          : lnbEl("p", "lnb-empty", "No operation is running."),
        lnbEl("h4", "lnb-subtitle", "Recent activity"),
      ];
      parts.push(
        recent.length
          ? lnbEl("ol", "lnb-recent", ...recent.map((line) => lnbEl("li", null, line)))
          : lnbEl("p", "lnb-empty", "No activity yet."),
      );
      return parts;
    });
  },
};
