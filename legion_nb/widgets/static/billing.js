// The billing panel: month to date and forecast per provider, top resources, cost per day, orphans.
// Mirrors legion_nb/widgets/billing.py: title, status, totals, top, days, orphans. The chart is SVG
// built element by element (no markup parsing, no library, no network).

const LNB_SVG = "http://www.w3.org/2000/svg";
const LNB_PROVIDER_COLOURS = { hetzner: "#d50c2d", scaleway: "#4f0599", ovh: "#123f6d" };

function lnbSvg(tag, attributes, text) {
  const node = document.createElementNS(LNB_SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function billingChart(days) {
  if (days.length === 0) return lnbEl("p", "lnb-empty", "No daily costs yet.");
  const labels = [...new Set(days.map((d) => d.day))].sort();
  const providers = [...new Set(days.map((d) => d.provider))].sort();
  const totals = labels.map((label) =>
    days.filter((d) => d.day === label).reduce((sum, d) => sum + parseFloat(d.cost), 0),
  );
  const top = Math.max(...totals, 0) || 1;
  const width = 640, height = 180, left = 48, bottom = 20, step = (width - left) / labels.length;
  const svg = lnbSvg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "lnb-cost-chart" });
  labels.forEach((label, i) => {
    let base = 0;
    for (const provider of providers) {
      const entry = days.find((d) => d.day === label && d.provider === provider);
      if (!entry) continue;
      const value = parseFloat(entry.cost);
      if (!(value > 0)) continue;
      const h = ((height - bottom - 8) * value) / top;
      const y = height - bottom - ((height - bottom - 8) * (base + value)) / top;
      const bar = lnbSvg("rect", {
        x: left + i * step + step * 0.1, y, width: step * 0.8, height: h,
        fill: LNB_PROVIDER_COLOURS[provider] || "#7a7a7a",
      });
      bar.append(lnbSvg("title", {}, `${label} ${provider}: ${entry.cost} ${entry.currency}`));
      bar.dataset.provider = provider;
      svg.append(bar);
      base += value;
    }
    if (labels.length <= 16 || i % Math.ceil(labels.length / 8) === 0) {
      svg.append(lnbSvg("text", { x: left + i * step + step / 2, y: height - 5, "text-anchor": "middle", "font-size": 10 }, label.slice(5)));
    }
  });
  svg.append(lnbSvg("text", { x: left - 4, y: 14, "text-anchor": "end", "font-size": 10 }, top.toFixed(2)));
  return svg;
}

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-billing", ["status", "totals", "top", "days", "orphans"], () => {
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
            ["Provider", (r) => r.provider],
            ["Ownership", (r) => r.ownership],
            ["Estimate", (r) => lnbText(r.estimate)],
          ], orphans);
      return [header, totals, billingChart(model.get("days")), top, orphanPart];
    });
  },
};
