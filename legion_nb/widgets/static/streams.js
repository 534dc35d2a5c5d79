// The streams panel: one row per Sender stream session. Mirrors legion_nb/widgets/streams.py:
// title, locked, revision, feed_status, streams.

const STREAM_COLUMNS = [
  ["Stream", (s) => lnbEl("span", "lnb-name", s.name)],
  ["Satellite", (s) => lnbText(s.satellite)],
  ["State", (s) => lnbBadge("stream", s.state)],
  ["Reason", (s) => lnbText(s.reason)],
  ["Bytes", (s) => lnbText(String(s.bytes ?? ""))],
  ["Latency (ms)", (s) => lnbText(s.latency_ms == null ? "" : String(s.latency_ms))],
  ["Endpoint", (s) => lnbText(s.endpoint)],
];

export default {
  render({ model, el }) {
    return lnbMount(model, el, "lnb-streams", ["streams"], () => {
      const streams = model.get("streams");
      return [
        lnbHeader(model),
        streams.length
          ? lnbTable("lnb-streams-table", STREAM_COLUMNS, streams)
          : lnbEl("p", "lnb-empty", "No streams planned."),
      ];
    });
  },
};
