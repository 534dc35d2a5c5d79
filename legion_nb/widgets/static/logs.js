// The log panel: a search box, label filters, the matching lines with every match highlighted.
// Mirrors legion_nb/widgets/logs.py: title, status, query, node, source, level, levels, nodes,
// sources, lines. Lines are text nodes; a match is wrapped in <mark> by splitting the text, never
// by parsing it as markup (lines come from the nodes).

function lnbMarked(text, query) {
  const line = lnbEl("span", "lnb-log-text");
  if (!query) {
    line.append(document.createTextNode(text));
    return line;
  }
  const lower = text.toLowerCase(), needle = query.toLowerCase();
  let at = 0;
  for (let found = lower.indexOf(needle); found !== -1; found = lower.indexOf(needle, at)) {
    if (found > at) line.append(document.createTextNode(text.slice(at, found)));
    line.append(lnbEl("mark", null, text.slice(found, found + needle.length)));
    at = found + needle.length;
  }
  if (at < text.length) line.append(document.createTextNode(text.slice(at)));
  return line;
}

function lnbLogPick(model, trait, label, options) {
  const select = lnbEl("select", `lnb-pick lnb-pick-${trait}`);
  select.setAttribute("aria-label", label);
  for (const value of ["", ...options.filter((o) => o !== "")]) {
    const option = lnbEl("option", null, value === "" ? `every ${label}` : value);
    option.value = value;
    if (value === model.get(trait)) option.selected = true;
    select.append(option);
  }
  select.addEventListener("change", () => {
    model.set(trait, select.value);
    model.save_changes();
  });
  return select;
}

export default {
  render({ model, el }) {
    const traits = ["status", "query", "node", "source", "level", "nodes", "sources", "lines"];
    return lnbMount(model, el, "lnb-logs", traits, () => {
      const header = lnbEl("div", "lnb-header", lnbEl("span", "lnb-title", model.get("title")), lnbEl("span", "lnb-feed", model.get("status")));
      const search = lnbEl("input", "lnb-log-search");
      search.type = "search";
      search.placeholder = "search (3+ characters use the index)";
      search.value = model.get("query");
      search.setAttribute("aria-label", "search");
      search.addEventListener("change", () => {
        model.set("query", search.value);
        model.save_changes();
      });
      const picks = lnbEl("div", "lnb-picks", search,
        lnbLogPick(model, "node", "node", model.get("nodes")),
        lnbLogPick(model, "source", "source", model.get("sources")),
        lnbLogPick(model, "level", "level", model.get("levels")),
      );
      const query = model.get("query");
      const rows = model.get("lines").map((r) => {
        const meta = lnbEl("span", "lnb-log-meta", `${r.time} ${r.node} ${r.source} ${r.level}`);
        const row = lnbEl("div", `lnb-log-line lnb-log-level-${r.level}`, meta, lnbMarked(r.text, query));
        row.dataset.id = String(r.id);
        row.dataset.node = r.node;
        return row;
      });
      // What the grey prefix of each line holds, once above them (times are UTC, as in the frames).
      const legend = lnbEl("div", "lnb-log-legend", "time (UTC) \u00b7 node \u00b7 source \u00b7 level, then the line");
      const body = rows.length === 0
        ? lnbEl("p", "lnb-empty", "No matching lines.")
        : lnbEl("div", null, legend, lnbEl("div", "lnb-log-lines", ...rows));
      return [header, picks, body];
    });
  },
};
