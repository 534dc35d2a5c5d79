// The telemetry panel: a sparkline per node for the picked metric, one chart per metric.
// Mirrors legion_nb/widgets/telemetry.py: title, status, node, metric, window, windows, nodes,
// metrics, sparklines, charts. Lines are SVG polylines built element by element (no library, no
// network); picking a node, metric or window sets the trait and the Python side reads again.

const LNB_TSVG = "http://www.w3.org/2000/svg";
const LNB_LINE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];

function lnbTsvg(tag, attributes, text) {
  const node = document.createElementNS(LNB_TSVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function lnbScale(lines) {
  const all = lines.flat();
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  return { x0, y0, sx: x1 - x0 || 1, sy: y1 - y0 || 1, y1 };
}

function lnbPolyline(points, scale, width, height, left, top, colour) {
  const coords = points.map(([t, v]) =>
    `${(left + ((width - left) * (t - scale.x0)) / scale.sx).toFixed(1)},${(top + (height - top) * (1 - (v - scale.y0) / scale.sy)).toFixed(1)}`,
  );
  return lnbTsvg("polyline", { points: coords.join(" "), fill: "none", stroke: colour, "stroke-width": 1.5 });
}

function lnbSparkline(spark) {
  const width = 160, height = 32;
  const svg = lnbTsvg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "lnb-sparkline" });
  if (spark.points.length > 0) svg.append(lnbPolyline(spark.points, lnbScale([spark.points]), width, height - 2, 0, 2, "#1f77b4"));
  const row = lnbEl("div", "lnb-spark", lnbEl("span", "lnb-spark-node", spark.node), svg, lnbEl("span", "lnb-spark-last", Number(spark.last).toPrecision(4)));
  row.dataset.node = spark.node;
  return row;
}

function lnbLineChart(chart) {
  const width = 640, height = 160, left = 56, top = 8, bottom = 18;
  const svg = lnbTsvg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "lnb-line-chart" });
  const scale = lnbScale(chart.series.map((s) => s.points));
  chart.series.forEach((s, i) => {
    const line = lnbPolyline(s.points, scale, width - 8, height - bottom, left, top, LNB_LINE_COLOURS[i % LNB_LINE_COLOURS.length]);
    line.append(lnbTsvg("title", {}, s.node));
    line.dataset.node = s.node;
    svg.append(line);
  });
  svg.append(lnbTsvg("text", { x: left - 4, y: top + 8, "text-anchor": "end", "font-size": 10 }, scale.y1.toPrecision(3)));
  svg.append(lnbTsvg("text", { x: left - 4, y: height - bottom, "text-anchor": "end", "font-size": 10 }, scale.y0.toPrecision(3)));
  const legend = lnbEl("div", "lnb-legend", ...chart.series.map((s, i) => {
    const key = lnbEl("span", "lnb-legend-key", s.node);
    key.style.borderLeft = `10px solid ${LNB_LINE_COLOURS[i % LNB_LINE_COLOURS.length]}`;
    return key;
  }));
  const box = lnbEl("div", "lnb-chart", lnbEl("div", "lnb-chart-title", chart.metric), svg, legend);
  box.dataset.metric = chart.metric;
  return box;
}

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
    const traits = ["status", "node", "metric", "window", "nodes", "metrics", "sparklines", "charts"];
    return lnbMount(model, el, "lnb-telemetry", traits, () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const picks = lnbEl("div", "lnb-picks",
        lnbPick(model, "node", "node", model.get("nodes"), "every node"),
        lnbPick(model, "metric", "metric", model.get("metrics"), null),
        lnbPick(model, "window", "window", model.get("windows"), null),
      );
      const sparks = model.get("sparklines");
      const sparkPart = sparks.length === 0
        ? lnbEl("p", "lnb-empty", "No telemetry yet: collection fills the store (legion observe).")
        : lnbEl("div", "lnb-sparks", ...sparks.map(lnbSparkline));
      const charts = lnbEl("div", "lnb-charts", ...model.get("charts").map(lnbLineChart));
      return [header, picks, sparkPart, charts];
    });
  },
};
