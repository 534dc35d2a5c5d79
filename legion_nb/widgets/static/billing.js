// The billing panel: month to date and forecast per provider, top resources, cost per day, orphans.
// Mirrors legion_nb/widgets/billing.py: title, status, totals, top, orphans. The cost-per-day chart
// is a Plotly FigureWidget shown under this view (Python redraws it from the days trait).

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-billing", ["status", "totals", "top", "orphans"], () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const totals = lnbTable("lnb-billing-totals", [
        ["Provider", (r) => r.provider],
        ["Month to date", (r) => r.month_to_date],
        ["Forecast", (r) => r.forecast],
        ["Provider forecast", (r) => lnbText(r.provider_forecast)],
        ["Currency", (r) => r.currency],
        ["From", (r) => r.source],
      ], model.get("totals"));
      const top = lnbTable("lnb-billing-top", [
        ["Resource", (r) => r.name],
        ["Provider", (r) => r.provider],
        ["Cost", (r) => r.cost],
        ["Currency", (r) => r.currency],
      ], model.get("top"));
      const orphans = model.get("orphans");
      const orphanPart = orphans.length === 0
        ? lnbEl("p", "lnb-empty", "No orphans: every listed resource is planned.")
        : lnbTable("lnb-billing-orphans", [
            ["Orphan", (r) => r.name],
            ["Kind", (r) => r.kind],
            ["Address", (r) => r.address],
            ["Provider", (r) => r.provider],
            ["Ownership", (r) => r.ownership],
            ["Estimate", (r) => lnbText(r.estimate)],
          ], orphans);
      return [header, totals, top, orphanPart];
    });
  },
};
