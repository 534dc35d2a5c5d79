// The billing panel: month to date and forecast per provider, top resources, cost per day, orphans.
// Mirrors legion_nb/widgets/billing.py: title, status, totals, top, orphans, width. The cost-per-day
// chart is a Plotly FigureWidget shown under this view (Python redraws it from the days trait, as
// wide as lnbReportWidth says the panel is).

export default {
  render({ model, el }) {
    return lnbReportWidth(model, el, lnbMount(model, el, "lnb-billing", ["status", "totals", "top", "orphans"], () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const totals = lnbTable("lnb-billing-totals", [
        ["Provider", (r) => r.provider],
        ["Month to date", (r) => lnbMoney(r.month_to_date), undefined, "lnb-money"],
        ["Forecast", (r) => lnbMoney(r.forecast), undefined, "lnb-money"],
        ["Provider forecast", (r) => lnbMoney(r.provider_forecast), undefined, "lnb-money"],
        ["Currency", (r) => r.currency],
        ["From", (r) => r.source],
      ], model.get("totals"));
      const top = lnbTable("lnb-billing-top", [
        ["Resource", (r) => {
          const name = lnbEl("span", "lnb-name", r.name);
          if (r.resource && r.resource !== r.name) name.title = r.resource;  // the provider's id
          return name;
        }],
        ["Provider", (r) => r.provider],
        ["Cost", (r) => lnbMoney(r.cost), undefined, "lnb-money"],
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
      // Each table under a line that says what it holds: three tables in a row read as one otherwise.
      const title = (text) => lnbEl("h4", "lnb-subtitle", text);
      return [
        header,
        title("This month per provider: to date and forecast"),
        totals,
        title("Top resources by cost this month"),
        top,
        title("Orphans: at a provider, not in the plan"),
        orphanPart,
      ];
    }));
  },
};
