// The telemetry panel's header and picks. Mirrors legion_nb/widgets/telemetry.py: title, status,
// node, metric, window, windows, nodes, metrics, sparklines. The sparklines and the chart per metric
// are Plotly FigureWidgets shown under this view (Python redraws them); picking a node, metric or
// window sets the trait and the Python side reads again.

function lnbPick(model, trait, label, options, allLabel) {
  const select = lnbEl("select", `lnb-pick lnb-pick-${trait}`);
  select.setAttribute("aria-label", label);
  const choices = allLabel === null ? options : ["", ...options];
  for (const value of choices) {
    const option = lnbEl("option", null, value === "" ? allLabel : value);
    option.value = value;
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
    const traits = ["status", "node", "metric", "window", "nodes", "metrics", "sparklines"];
    return lnbMount(model, el, "lnb-telemetry", traits, () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const picks = lnbEl("div", "lnb-picks",
        lnbPick(model, "node", "node", model.get("nodes"), "every node"),
        lnbPick(model, "metric", "metric", model.get("metrics"), null),
        lnbPick(model, "window", "window", model.get("windows"), null),
      );
      const empty = model.get("sparklines").length === 0
        ? lnbEl("p", "lnb-empty", "No telemetry yet: collection fills the store (legion observe).")
        : null;
      return [header, picks, empty].filter((part) => part !== null);
    });
  },
};
