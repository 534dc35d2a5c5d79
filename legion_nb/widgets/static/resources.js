// The resources panel: one row per resource as the latest engine snapshot has it.
// Mirrors the traits of legion_nb/widgets/resources.py: title, locked, revision, feed_status, rows.

// Widths are shares of the panel, so a column is as wide in every redraw (lnbTable: lnb-fixed).
const RESOURCE_COLUMNS = [
  ["Kind", (r) => r.kind, "7%"],
  ["Name", (r) => lnbEl("span", "lnb-name", r.name), "12%"],
  ["Provider", (r) => r.provider, "8%"],
  ["State", (r) => lnbBadge("state", r.state), "9%"],
  ["Action", (r) => lnbBadge("action", r.action), "8%"],
  ["Operation", (r) => lnbText(r.operation), "9%"],
  ["Substage", (r) => lnbText(r.substage), "10%"],
  ["Waiting for", (r) => lnbText(r.waiting), "11%"],
  ["Last error", (r) => (r.error ? lnbEl("span", "lnb-error", r.error) : lnbText("")), "16%"],
  ["Note", (r) => lnbText(r.note), "10%"],
];

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-resources", ["rows"], () => {
      const rows = model.get("rows");
      const parts = [lnbHeader(model)];
      if (rows.length === 0) {
        parts.push(lnbEl("p", "lnb-empty", model.get("locked") ? "The state is locked." : "No resources planned or tracked yet."));
      }
      parts.push(
        lnbTable("lnb-resources-table", RESOURCE_COLUMNS, rows, (r) => `lnb-row lnb-row-${r.state}`, (r) =>
          lnbWarningRow(r, RESOURCE_COLUMNS.length),
        ),
      );
      return parts;
    });
  },
};
