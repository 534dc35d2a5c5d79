// The resources panel: one row per resource as the latest engine snapshot has it.
// Mirrors the traits of legion_nb/widgets/resources.py: title, locked, revision, feed_status, rows.

// Fixed widths (lnbTable: lnb-fixed), so a column is as wide in every redraw. The short columns are
// sized in em for their header and their common values on one line (dns_zone, provisioning,
// unchanged); the free-text columns share what is left and wrap. Kind and provider cells are marked
// lnb-short: values that must read on one line (the browser tests check it).
const RESOURCE_COLUMNS = [
  ["Kind", (r) => lnbWords(r.kind), "5.9em", "lnb-short"],
  ["Name", (r) => lnbEl("span", "lnb-name", lnbWords(r.name)), "9.9em"],
  ["Provider", (r) => r.provider, "6.1em", "lnb-short"],
  ["State", (r) => lnbBadge("state", r.state), "7.9em"],
  ["Action", (r) => lnbBadge("action", r.action), "7.5em"],
  ["Operation", (r) => lnbWords(r.operation), "6.9em"],
  ["Substage", (r) => lnbWords(r.substage), "7.2em"],
  ["Waiting for", (r) => lnbText(r.waiting), "auto"],
  ["Last error", (r) => (r.error ? lnbEl("span", "lnb-error", r.error) : lnbText("")), "auto"],
  ["Note", (r) => lnbText(r.note), "auto"],
];

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-resources", ["rows"], () => {
      const rows = model.get("rows");
      // No rows: the line says why; an empty table would only be a header row.
      if (rows.length === 0) {
        return [lnbHeader(model), lnbEl("p", "lnb-empty", model.get("locked") ? "The state is locked." : "No resources planned or tracked yet.")];
      }
      return [
        lnbHeader(model),
        lnbTable("lnb-resources-table", RESOURCE_COLUMNS, rows, (r) => `lnb-row lnb-row-${r.state}`, (r) =>
          lnbWarningRow(r, RESOURCE_COLUMNS.length),
        ),
      ];
    });
  },
};
