// The telemetry panel's header and picks. Mirrors legion_nb/widgets/telemetry.py: title, status,
// node, metric, window, windows, nodes, metrics, labels, sparklines, width. The sparklines and the
// chart per metric are Plotly FigureWidgets shown under this view (Python redraws them, as wide as
// lnbReportWidth says the panel is); picking a node, metric or window sets the trait and the Python
// side reads again. A metric is picked by its label with its unit; its recording-rule name shows
// beside the pick, as text to copy.

function lnbPick(model, trait, label, options, allLabel, names) {
  const select = lnbEl("select", `lnb-pick lnb-pick-${trait}`);
  select.setAttribute("aria-label", label);
  const choices = allLabel === null ? options : ["", ...options];
  for (const value of choices) {
    const option = lnbEl("option", null, value === "" ? allLabel : (names && names[value]) || value);
    option.value = value;
    if (names) option.title = value;
    if (value === model.get(trait)) option.selected = true;
    select.append(option);
  }
  select.addEventListener("change", () => {
    model.set(trait, select.value);
    model.save_changes();
  });
  return lnbEl("label", "lnb-pick-label", `${label} `, select);
}

export default {
  render({ model, el }) {
    const traits = ["status", "node", "metric", "window", "nodes", "metrics", "labels", "sparklines"];
    return lnbReportWidth(model, el, lnbMount(model, el, "lnb-telemetry", traits, () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const metric = model.get("metric");
      const rule = metric ? lnbEl("code", "lnb-metric-rule", metric) : null;
      if (rule) rule.title = "the metric's recording-rule name, as the frames and queries hold it";
      const picks = lnbEl("div", "lnb-picks",
        lnbPick(model, "node", "node", model.get("nodes"), "every node"),
        lnbEl("span", "lnb-pick-metric", lnbPick(model, "metric", "metric", model.get("metrics"), null, model.get("labels")), rule),
        lnbPick(model, "window", "window", model.get("windows"), null),
      );
      const empty = model.get("sparklines").length === 0
        ? lnbEl("p", "lnb-empty", "No telemetry yet: collection fills the store (legion observe).")
        : null;
      return [header, picks, empty].filter((part) => part !== null);
    }));
  },
};
