// The dashboard's engagement panels: headline tiles from the summary (with the change against
// the previous period), the retention curve of a movie picked in the popular table, peak
// concurrency over the window, and "watching now", refreshed every few seconds. Reads the same
// API as every client; the window (and the time zone, when the page has a picker) come from the
// dashboard's own controls.
(function () {
  "use strict";
  const API = "/api/v1/analytics";
  const REALTIME_EVERY_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const charts = {};
  let movie = null; // the movie whose retention curve is shown

  async function get(path) {
    const response = await fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || JSON.stringify(body) || response.statusText);
    return body;
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), config);
  }

  // The window form's controls: `days`, and `tz` once the page has a zone picker (any control
  // named tz in #window-form).
  function windowQuery() {
    if (window.analyticsWindow) return window.analyticsWindow.query();  // dashboard.js: presets, zone
    const tz = $("window-form").elements.namedItem("tz");
    return `days=${encodeURIComponent($("days").value)}&tz=${encodeURIComponent((tz && tz.value) || "UTC")}`;
  }

  function duration(seconds) {
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (h >= 100) return `${fmt(h)} h`;
    return h ? `${h} h ${m} min` : `${m} min ${s % 60} s`;
  }

  function changeText(value) {
    if (value === null || value === undefined) return "no earlier data";
    const sign = value > 0 ? "+" : value < 0 ? "−" : "±";
    return `${sign}${Math.abs(value).toFixed(2)} % vs previous`;
  }

  // --- Headline tiles ---------------------------------------------------------------------
  const TILES = [
    ["views", "tile-views", (v) => fmt(v)],
    ["watch_time_seconds", "tile-watch-time", duration],
    ["avg_view_duration_seconds", "tile-avg-duration", duration],
    ["completion_rate", "tile-completion", (v) => v.toFixed(2) + " %"],
    ["peak_concurrent_views", "tile-peak", (v) => fmt(v)],
    ["unique_users", "tile-viewers", (v) => fmt(v)],
  ];

  function renderSummary(summary) {
    for (const [field, id, show] of TILES) {
      const tile = $(id);
      tile.querySelector(".value").textContent = show(summary[field]);
      tile.dataset.value = summary[field];
      const change = summary.change[field];
      const delta = tile.querySelector(".change");
      delta.textContent = changeText(change);
      delta.dataset.value = change === null ? "" : change;
      delta.className = "change " + (change > 0 ? "up" : change < 0 ? "down" : "");
    }
  }

  // --- Retention --------------------------------------------------------------------------
  async function loadRetention() {
    if (!movie) return;
    const data = await get(`/content/${encodeURIComponent(movie)}/retention?${windowQuery()}&bucket=60`);
    $("retention-movie").textContent = movie;
    $("retention-views").textContent = `${fmt(data.views)} views, average ${duration(data.avg_view_duration_seconds)}`;
    draw("retention-chart", {
      type: "line",
      data: {
        labels: data.curve.map((p) => Math.round(p.position / 60)),
        datasets: [{ label: "% of views still watching", data: data.curve.map((p) => p.percent),
                     borderColor: "#2f6fed", pointRadius: 0, tension: 0, fill: false }],
      },
      options: {
        maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } },
        scales: { x: { title: { display: true, text: "minute of the film" } }, y: { min: 0, max: 100 } },
      },
    });
    $("retention-chart").dataset.movie = movie;
  }

  function pickMovie(event) {
    const row = event.target.closest("tr");
    const cell = row && row.querySelector("td.movie");
    if (!cell) return;
    movie = cell.textContent;
    for (const tr of $("popular-table").querySelectorAll("tbody tr")) tr.classList.toggle("picked", tr === row);
    loadRetention().catch(showError);
  }

  // The popular table is drawn by dashboard.js; until a movie is picked, its first row is.
  function defaultMovie() {
    const first = $("popular-table").querySelector("tbody td.movie");
    return first ? first.textContent : null;
  }

  // --- Concurrency ------------------------------------------------------------------------
  async function loadConcurrency() {
    const days = Number($("days").value);  // NaN for "this month" / "last month": by day
    const interval = days <= 7 ? "hour" : "day";
    const data = await get(`/concurrency?${windowQuery()}&interval=${interval}`);
    const labels = data.concurrency.map((e) => (interval === "day" ? e.date : e.start.slice(5, 16).replace("T", " ")));
    draw("concurrency-chart", {
      type: "bar",
      data: {
        labels,
        datasets: [{ label: "Peak concurrent views", data: data.concurrency.map((e) => e.peak_concurrent_views),
                     backgroundColor: "#7a5af8" }],
      },
      options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } },
    });
    $("concurrency-title").textContent = `Peak concurrent views per ${interval} (${data.tz})`;
  }

  // --- Watching now -----------------------------------------------------------------------
  async function loadRealtime() {
    const now = await get("/realtime?window=300");
    $("now-live").textContent = fmt(now.live_views);
    $("now-viewers").textContent = fmt(now.viewers);
    $("now-as-of").textContent = now.as_of;
    const list = $("now-top");
    list.replaceChildren(...now.top_movies.map((m) => {
      const li = document.createElement("li");
      const id = document.createElement("span");
      id.className = "movie";
      id.textContent = m.movie_id;
      li.append(id, ` ${fmt(m.live_views)}`);
      return li;
    }));
    $("now").dataset.asOf = now.as_of;
  }

  function showError(error) {
    $("engagement-status").textContent = "Could not load: " + error.message;
  }

  async function refresh() {
    $("engagement-status").textContent = "";
    try {
      const summary = await get(`/summary?${windowQuery()}&compare=previous_period`);
      renderSummary(summary);
      await loadConcurrency();
      movie = movie || defaultMovie();
      await loadRetention();
      document.body.dataset.engagementLoaded = `${$("days").value}|${summary.tz}|${movie || ""}`;
    } catch (error) {
      showError(error);
    }
  }

  // The popular table is filled asynchronously: draw once it has rows, and again whenever the
  // window (or zone) changes.
  new MutationObserver(() => {
    if (!movie && defaultMovie()) refresh();
  }).observe($("popular-table").querySelector("tbody"), { childList: true });
  $("popular-table").addEventListener("click", pickMovie);
  $("window-form").addEventListener("change", refresh);
  refresh();
  loadRealtime().catch(showError);
  setInterval(() => loadRealtime().catch(showError), REALTIME_EVERY_MS);
})();
