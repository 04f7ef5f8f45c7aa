// The app page's charts (uPlot), fed by the "chart" events of the page's SSE stream.
(function () {
  "use strict";
  const feed = document.getElementById("chart-feed");
  if (!feed) return;
  const plots = {};
  const width = () => Math.max(280, Math.min(900, document.querySelector("main").clientWidth - 20));

  function draw(id, data, series, opts, empty) {
    const el = document.getElementById(id);
    if (!el) return;
    const blank = !data[0].length || data.slice(1).every(ys => ys.every(y => y == null));
    if (blank) {
      if (plots[id]) { plots[id].destroy(); delete plots[id]; }
      el.textContent = empty || "no data yet";
      return;
    }
    if (data[0].length === 1) {
      // uPlot spreads a lone point over years: give it the half minute before it
      data = data.map((col, i) => (i === 0 ? [col[0] - 30, col[0]] : [null, col[0]]));
    }
    if (plots[id] && plots[id].series.length === series.length + 1) { plots[id].setData(data); return; }
    if (plots[id]) plots[id].destroy();
    el.textContent = "";
    // a few seconds of data: show the last half minute
    const x = { time: true, range: (u, min, max) => (max - min < 30 ? [max - 30, max + 1] : [min, max]) };
    const options = Object.assign({ width: width(), height: 180, series: [{}].concat(series) }, opts || {});
    options.scales = Object.assign({ x: x }, options.scales || {});
    plots[id] = new uPlot(options, data, el);
  }

  function update(body) {
    const w = body.weights;
    draw("chart-weights", [w.t, w.set, w.actual], [
      { label: "set %", stroke: "#1f6feb" },
      { label: "actual %", stroke: "#d97706", dash: [4, 4] },
    ], { scales: { y: { range: [0, 100] } } });
    const ev = body.evidence;
    const text = document.getElementById("evidence-text");
    if (!ev) { if (text) text.textContent = "No analysis yet."; return; }
    const p = ev.points;
    const t = p.t || [];
    draw("chart-rates", [t, p.canary_rate || [], p.baseline_rate || []], [
      { label: "canary", stroke: "#dc2626" },
      { label: "baseline", stroke: "#2563eb" },
    ]);
    draw("chart-latency", [t, p.canary_q_ms || [], p.canary_lo_ms || [], p.canary_hi_ms || [],
      p.baseline_q_ms || [], p.baseline_lo_ms || [], p.baseline_hi_ms || []], [
      { label: "canary", stroke: "#dc2626" },
      { label: "canary low", stroke: "#fca5a5", dash: [2, 3] },
      { label: "canary high", stroke: "#fca5a5", dash: [2, 3] },
      { label: "baseline", stroke: "#2563eb" },
      { label: "baseline low", stroke: "#93c5fd", dash: [2, 3] },
      { label: "baseline high", stroke: "#93c5fd", dash: [2, 3] },
    ], { scales: { y: { range: (u, min, max) => [0, (max || 1) * 1.2] } } },
    "no latency estimate in this run (none asked for, or still within its initialDelay)");
    const line = t.map(() => ev.threshold);
    draw("chart-evalues", [t, p.e_fail || [], p.e_pass || [], p.e_slower || [], line], [
      { label: "e (worse failure rate)", stroke: "#dc2626" },
      { label: "e (no worse: pass)", stroke: "#16a34a" },
      { label: "e (slower)", stroke: "#9333ea" },
      { label: "1/α", stroke: "#111827", dash: [6, 4] },
    ], { scales: { y: { distr: 3 } }, axes: [{}, { size: 70 }] });
    if (text) text.textContent = "Analysis " + ev.kind + " of revision " + ev.revision +
      (ev.baseline ? " against " + ev.baseline : "") + ": " + ev.outcome + (ev.detail ? " — " + ev.detail : "");
    feed.dataset.outcome = ev.outcome;
  }

  feed.addEventListener("htmx:sseBeforeMessage", function (e) {
    e.preventDefault();  // data for the charts, not HTML to swap in
    update(JSON.parse(e.detail.data));
  });
  fetch("/apps/" + encodeURIComponent(feed.dataset.app) + "/charts").then(r => r.json()).then(update);
})();
