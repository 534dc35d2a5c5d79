// The resources panel: one row per resource as the latest engine snapshot has it.
// Mirrors the traits of legion_nb/widgets/resources.py: title, locked, revision, feed_status, rows.

const RESOURCE_COLUMNS = [
  ["Kind", (r) => r.kind],
  ["Name", (r) => lnbEl("span", "lnb-name", r.name)],
  ["Provider", (r) => r.provider],
  ["State", (r) => lnbBadge("state", r.state)],
  ["Action", (r) => lnbBadge("action", r.action)],
  ["Operation", (r) => lnbText(r.operation)],
  ["Substage", (r) => lnbText(r.substage)],
  ["Waiting for", (r) => lnbText(r.waiting)],
  ["Last error", (r) => (r.error ? lnbEl("span", "lnb-error", r.error) : lnbText(""))],
  ["Note", (r) => lnbText(r.note)],
];

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-resources", ["rows"], () => {
      const rows = model.get("rows");
      const parts = [lnbHeader(model)];
      if (rows.length === 0) {
        parts.push(lnbEl("p", "lnb-empty", model.get("locked") ? "The state is locked." : "No resources planned or tracked yet."));
      }
      parts.push(lnbTable("lnb-resources-table", RESOURCE_COLUMNS, rows, (r) => `lnb-row lnb-row-${r.state}`));
      return parts;
    });
  },
};
