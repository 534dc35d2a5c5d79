// The plan diff panel: each resource with its action, then its fields in the planned, tracked and
// observed views, under the plan's monthly cost. Mirrors legion_nb/widgets/plan_diff.py: title,
// locked, revision, feed_status, resources, counts, cost.

// Fixed widths (lnbColgroup, lnb-fixed), so a column stays where it is while values change from one
// snapshot to the next: the kind sized for floating_ip on one line, the resource or field name a
// share wide enough for a derived firewall's name, and the three views of a value equal thirds of
// the rest, so planned, tracked and observed read side by side at the same width.
const DIFF_COLUMNS = [
  ["Kind", "6.4em"],
  ["Resource / field", "30%"],
  ["Planned", "auto"],
  ["Tracked", "auto"],
  ["Observed", "auto"],
];

function diffCounts(counts, locked) {
  const entries = Object.entries(counts);
  if (entries.length === 0) {
    return lnbEl("p", "lnb-empty", locked ? "The state is locked." : "Nothing planned, tracked or observed yet.");
  }
  const items = entries.map(([action, n]) => lnbEl("span", "lnb-count", lnbBadge("action", action), ` ${n}`));
  return lnbEl("div", "lnb-counts", ...items);
}

// A change of money with its sign: "+3.79", "-1.20", and "0.00" for none.
function signedMoney(amount) {
  const text = lnbMoney(amount);
  if (/^-?0\.0+$/.test(text)) return text.replace("-", "");
  return text.startsWith("-") ? text : `+${text}`;
}

function diffCost(cost) {
  const lines = (cost && cost.currencies) || [];
  if (lines.length === 0) return lnbEl("span");
  const head = lnbEl("tr", null, ...["Monthly cost", "Now", "Planned", "Change"].map((h) => lnbEl("th", null, h)));
  const body = lnbEl("tbody");
  for (const line of lines) {
    const change = line.change;
    const row = lnbEl(
      "tr",
      "lnb-cost-line",
      lnbEl("td", null, line.currency),
      lnbEl("td", "lnb-money", lnbMoney(line.now)),
      lnbEl("td", "lnb-money", lnbMoney(line.planned)),
      lnbEl("td", "lnb-money lnb-cost-change", signedMoney(change)),
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

function fieldRow(field, folded) {
  const row = lnbEl(
    "tr",
    (field.changed ? "lnb-field lnb-changed" : "lnb-field") + (folded ? " lnb-folded" : ""),
    lnbEl("td"),
    lnbEl("td", "lnb-field-name", field.field),
    lnbEl("td", null, lnbText(field.planned)),
    lnbEl("td", null, lnbText(field.tracked)),
    lnbEl("td", null, lnbText(field.observed)),
  );
  row.dataset.field = field.field;
  if (folded) row.hidden = true;
  return row;
}

// Changed fields first (a create's planned choices); the unchanged ones fold behind one row per resource (click to expand).
// ``open`` keeps which resources the reader expanded, across redraws.
function diffBody(resources, open) {
  const body = lnbEl("tbody");
  for (const resource of resources) {
    // The note explains the row (why it exists); it spans the tracked and observed columns but is
    // no value of theirs, so it reads as an aside.
    const note = lnbEl("td", "lnb-note", resource.note);
    note.colSpan = 2;
    const head = lnbEl(
      "tr",
      `lnb-resource lnb-resource-${resource.action}`,
      lnbEl("td", "lnb-kind lnb-short", lnbWords(resource.kind)),
      lnbEl("td", null, lnbEl("span", "lnb-name", resource.name), " ", lnbEl("span", "lnb-provider", resource.provider)),
      lnbEl("td", null, lnbBadge("action", resource.action)),
      note,
    );
    head.dataset.name = resource.name;
    body.append(head);
    const warning = lnbWarningRow(resource, DIFF_COLUMNS.length);
    if (warning) body.append(warning);
    const shown = resource.fields.filter((f) => !(f.planned === null && f.tracked === null && f.observed === null));
    // A create's planned choices are its change; a choice left to the catalog policy is not news.
    const creating = resource.action === "create" || resource.action === "adopt";
    const leads = (f) => f.changed || (creating && f.planned !== null && f.planned !== "(policy)");
    const changed = shown.filter(leads);
    const unchanged = shown.filter((f) => !leads(f));
    for (const field of changed) body.append(fieldRow(field, false));
    if (!unchanged.length) continue;
    const key = `${resource.kind}/${resource.name}`;
    const expanded = open.has(key);
    const label = lnbEl("td", "lnb-fold-label", `${expanded ? "\u25be" : "\u25b8"} ${unchanged.length} unchanged field${unchanged.length === 1 ? "" : "s"}`);
    label.colSpan = 4;
    const toggle = lnbEl("tr", "lnb-fold", lnbEl("td"), label);
    toggle.dataset.name = resource.name;
    const rows = unchanged.map((field) => fieldRow(field, !expanded));
    toggle.addEventListener("click", () => {
      const opening = !open.has(key);
      if (opening) open.add(key);
      else open.delete(key);
      for (const row of rows) {
        row.hidden = !opening;
        row.classList.toggle("lnb-folded", !opening);
      }
      label.textContent = `${opening ? "\u25be" : "\u25b8"} ${unchanged.length} unchanged field${unchanged.length === 1 ? "" : "s"}`;
    });
    body.append(toggle, ...rows);
  }
  return body;
}

export default {
  render({ model, el }) {
    const open = new Set();
    return lnbMount(model, el, "lnb-plan-diff", ["resources", "counts", "cost"], () => {
      const resources = model.get("resources");
      const parts = [lnbHeader(model), diffCounts(model.get("counts"), model.get("locked")), diffCost(model.get("cost"))];
      // No resources: the line above says why; an empty table would only be a header row.
      if (resources.length === 0) return parts;
      const head = lnbEl("tr", null, ...DIFF_COLUMNS.map(([heading]) => lnbEl("th", null, heading)));
      parts.push(lnbEl(
        "table",
        "lnb-table lnb-fixed lnb-diff-table",
        lnbColgroup(DIFF_COLUMNS.map(([, width]) => width)),
        lnbEl("thead", null, head),
        diffBody(resources, open),
      ));
      return parts;
    });
  },
};
