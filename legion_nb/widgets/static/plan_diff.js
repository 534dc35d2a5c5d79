// The plan diff panel: each resource with its action, then its fields in the planned, tracked and
// observed views, under the plan's monthly cost. Mirrors legion_nb/widgets/plan_diff.py: title,
// locked, revision, feed_status, resources, counts, cost.

function diffCounts(counts) {
  const entries = Object.entries(counts);
  if (entries.length === 0) return lnbEl("p", "lnb-empty", "Nothing planned, tracked or observed yet.");
  const items = entries.map(([action, n]) => lnbEl("span", "lnb-count", lnbBadge("action", action), ` ${n}`));
  return lnbEl("div", "lnb-counts", ...items);
}

function diffCost(cost) {
  const lines = (cost && cost.currencies) || [];
  if (lines.length === 0) return lnbEl("span");
  const head = lnbEl("tr", null, ...["Monthly cost", "Now", "Planned", "Change"].map((h) => lnbEl("th", null, h)));
  const body = lnbEl("tbody");
  for (const line of lines) {
    const change = line.change.startsWith("-") ? line.change : `+${line.change}`;
    const row = lnbEl(
      "tr",
      "lnb-cost-line",
      lnbEl("td", null, line.currency),
      lnbEl("td", null, line.now),
      lnbEl("td", null, line.planned),
      lnbEl("td", "lnb-cost-change", change),
    );
    row.dataset.currency = line.currency;
    body.append(row);
  }
  // The cost summary is styled like a data table but is not the panel's table of resources.
  const parts = [lnbEl("table", "lnb-cost-table", lnbEl("thead", null, head), body)];
  if (cost.unpriced && cost.unpriced.length) {
    parts.push(lnbEl("p", "lnb-empty", `Not priced (no catalog price): ${cost.unpriced.join(", ")}`));
  }
  return lnbEl("div", "lnb-cost", ...parts);
}

function diffBody(resources) {
  const body = lnbEl("tbody");
  for (const resource of resources) {
    const note = lnbEl("td", "lnb-note", resource.note);
    note.colSpan = 2;
    const head = lnbEl(
      "tr",
      `lnb-resource lnb-resource-${resource.action}`,
      lnbEl("td", "lnb-kind", resource.kind),
      lnbEl("td", null, lnbEl("span", "lnb-name", resource.name), " ", lnbEl("span", "lnb-provider", resource.provider)),
      lnbEl("td", null, lnbBadge("action", resource.action)),
      note,
    );
    head.dataset.name = resource.name;
    body.append(head);
    for (const field of resource.fields) {
      if (field.planned === null && field.tracked === null && field.observed === null) continue;
      const row = lnbEl(
        "tr",
        field.changed ? "lnb-field lnb-changed" : "lnb-field",
        lnbEl("td"),
        lnbEl("td", "lnb-field-name", field.field),
        lnbEl("td", null, lnbText(field.planned)),
        lnbEl("td", null, lnbText(field.tracked)),
        lnbEl("td", null, lnbText(field.observed)),
      );
      row.dataset.field = field.field;
      body.append(row);
    }
  }
  return body;
}

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-plan-diff", ["resources", "counts", "cost"], () => {
      const head = lnbEl("tr", null, ...["", "Resource / field", "Planned", "Tracked", "Observed"].map((h) => lnbEl("th", null, h)));
      const table = lnbEl("table", "lnb-table lnb-diff-table", lnbEl("thead", null, head), diffBody(model.get("resources")));
      return [lnbHeader(model), diffCounts(model.get("counts")), diffCost(model.get("cost")), table];
    });
  },
};
