// The staff dashboard: reads the same API as every client and draws it with Chart.js.
(function () {
  "use strict";
  const API = "/api/v1/analytics";
  const charts = {};
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => Number(n).toLocaleString("en-US");

  // An API error as sentences: {"detail": "…"} as it is, field errors as "User id: Must be a
  // valid UUID." (the API names the parameter; the page shows it readably, never raw JSON).
  function errorText(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && typeof body === "object" && !Array.isArray(body)) {
      const sentences = Object.entries(body).map(([field, messages]) => {
        const text = [].concat(messages).map(String).join(" ");
        if (field === "non_field_errors") return text;
        const name = field.replace(/_/g, " ");
        return name.charAt(0).toUpperCase() + name.slice(1) + ": " + text;
      });
      if (sentences.length) return sentences.join(" ");
    }
    return "The server answered " + status + ".";
  }

  async function get(path) {
    const response = await fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(errorText(body, response.status));
    }
    return body;
  }

  // --- The window: a time zone (default: the browser's) and a preset range ---------------
  // The local date today in `tz`, as YYYY-MM-DD (en-CA formats dates that way).
  function localToday(tz) {
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date());
  }

  function isoDate(year, month, day) {  // month 1-12; Date.UTC rolls day 0 back to the month before
    return new Date(Date.UTC(year, month - 1, day)).toISOString().slice(0, 10);
  }

  // The query parameters of the chosen window, shared with engagement.js (window.analyticsWindow).
  function windowQuery() {
    const tz = $("tz").value || "UTC";
    const preset = $("days").value;
    let range;
    if (preset === "this-month" || preset === "last-month") {
      const [year, month, day] = localToday(tz).split("-").map(Number);
      range = preset === "this-month"
        ? `from=${isoDate(year, month, 1)}&to=${isoDate(year, month, day)}`
        : `from=${isoDate(year, month - 1, 1)}&to=${isoDate(year, month, 0)}`;
    } else {
      range = `days=${encodeURIComponent(preset)}`;
    }
    return `${range}&tz=${encodeURIComponent(tz)}`;
  }
  window.analyticsWindow = { query: windowQuery };

  // Browsers (ICU) still name some zones by their old IANA names; the picker shows the current ones.
  const CURRENT_NAMES = {
    "Asia/Katmandu": "Asia/Kathmandu", "Asia/Calcutta": "Asia/Kolkata", "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Rangoon": "Asia/Yangon", "Europe/Kiev": "Europe/Kyiv", "Atlantic/Faeroe": "Atlantic/Faroe",
    "America/Godthab": "America/Nuuk", "Pacific/Enderbury": "Pacific/Kanton", "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
  };
  const current = (zone) => CURRENT_NAMES[zone] || zone;

  function fillZones() {
    const browserZone = current(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
    const listed = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
    const zones = [...new Set(listed.map(current))].filter((z) => z !== "UTC");
    if (!zones.includes(browserZone) && browserZone !== "UTC") zones.push(browserZone);
    $("tz").replaceChildren(...["UTC", ...zones.sort()].map((zone) => {
      const option = document.createElement("option");
      option.value = option.textContent = zone;
      option.selected = zone === browserZone;
      return option;
    }));
  }

  function csvLink(id, path) {
    $(id).href = API + path + (path.includes("?") ? "&" : "?") + "format=csv";
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), config);
  }

  function renderTrends(data) {
    const rows = data.trends;
    const sum = (key) => rows.reduce((total, row) => total + row[key], 0);
    $("total-events").textContent = fmt(sum("total_events"));
    $("total-starts").textContent = fmt(sum("starts"));
    $("total-finishes").textContent = fmt(sum("finishes"));
    const datasets = [
      { label: "Starts", data: rows.map((r) => r.starts), borderColor: "#2f6fed", tension: 0 },
      { label: "Finishes", data: rows.map((r) => r.finishes), borderColor: "#12b76a", tension: 0 },
      { label: "All events", data: rows.map((r) => r.total_events), borderColor: "#98a2b3", tension: 0 },
    ];
    if (data.previous) {  // the previous period, bucket by bucket, dashed under the same colours
      datasets.push(
        { label: "Starts (previous)", data: data.previous.map((r) => r.starts), borderColor: "#2f6fed",
          borderDash: [6, 4], tension: 0 },
        { label: "All events (previous)", data: data.previous.map((r) => r.total_events), borderColor: "#98a2b3",
          borderDash: [6, 4], tension: 0 },
      );
    }
    // One bucket (today by day) as a line is a lone dot on the axis: bars are readable.
    const single = rows.length === 1;
    if (single) datasets.forEach((d) => { d.backgroundColor = d.borderDash ? d.borderColor + "55" : d.borderColor; });
    draw("trends-chart", {
      type: single ? "bar" : "line",
      data: { labels: rows.map((r) => r.date || r.start), datasets },
      options: { maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false } },
    });
  }

  function renderHours(data) {
    $("peak-hour").textContent = data.peak_hour === null ? "–" : String(data.peak_hour).padStart(2, "0") + ":00";
    draw("hours-chart", {
      type: "bar",
      data: {
        labels: data.peak_hours.map((h) => String(h.hour).padStart(2, "0")),
        datasets: [{ label: "Events", data: data.peak_hours.map((h) => h.events_count), backgroundColor: "#2f6fed" }],
      },
      options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } },
    });
  }

  function renderPopular(data) {
    const body = $("popular-table").querySelector("tbody");
    body.replaceChildren(
      ...data.items.map((item, i) => {
        const tr = document.createElement("tr");
        const cells = [i + 1, item.movie_id, fmt(item.total_views), fmt(item.unique_viewers), item.completion_rate.toFixed(2) + " %"];
        cells.forEach((value, j) => {
          const td = document.createElement("td");
          td.textContent = value;
          if (j === 1) td.className = "movie";
          tr.appendChild(td);
        });
        return tr;
      })
    );
  }

  // interval=hour covers at most 31 dates (the API answers 400 beyond): over a longer window the
  // hour choice is disabled and a chart by hour falls back to days, instead of an error and stale
  // charts. "this month" / "last month" (NaN here) have at most 31 dates.
  function fitInterval() {
    const hour = $("interval").querySelector('option[value="hour"]');
    hour.disabled = Number($("days").value) > 31;
    if (hour.disabled && $("interval").value === "hour") $("interval").value = "day";
  }

  async function refresh() {
    fitInterval();
    const query = windowQuery();
    const trendsPath = `/trends?${query}&interval=${$("interval").value}` +
      ($("compare").checked ? "&compare=previous_period" : "");
    $("status").textContent = "Loading…";
    $("status").className = "";
    csvLink("trends-csv", trendsPath);
    csvLink("hours-csv", `/peak-hours?${query}`);
    csvLink("popular-csv", `/content/popular?${query}&limit=10`);
    try {
      const [trends, hours, popular] = await Promise.all([
        get(trendsPath),
        get(`/peak-hours?${query}`),
        get(`/content/popular?${query}&limit=10`),
      ]);
      renderTrends(trends);
      renderHours(hours);
      renderPopular(popular);
      document.querySelectorAll(".tz-name").forEach((el) => { el.textContent = trends.tz; });
      $("status").textContent = "";
      // What is drawn: the preset, the zone and the trends interval (tests wait for it).
      document.body.dataset.loaded = `${$("days").value}|${trends.tz}|${trends.interval}|${trends.previous ? 1 : 0}`;
    } catch (error) {
      $("status").textContent = "Could not load: " + error.message;
      $("status").className = "error";
    }
  }

  async function lookUpUser(event) {
    event.preventDefault();
    const list = $("user-stats");
    const id = $("user-id").value.trim();
    try {
      const stats = await get(`/user/${encodeURIComponent(id)}/stats?${windowQuery()}`);
      const rows = [
        ["Movies started", fmt(stats.movies_started)],
        ["Movies finished", fmt(stats.movies_finished)],
        ["Unique movies", fmt(stats.unique_movies_watched)],
        ["Watch time", fmt(stats.total_watch_time_seconds) + " s"],
        ["Completion", stats.completion_rate.toFixed(2) + " %"],
        ["Most watched", stats.most_watched_movie_id || "–"],
      ];
      list.replaceChildren(...rows.flatMap(([label, value]) => {
        const dt = document.createElement("dt");
        const dd = document.createElement("dd");
        dt.textContent = label;
        dd.textContent = value;
        return [dt, dd];
      }));
      list.dataset.user = id;
    } catch (error) {
      const dd = document.createElement("dd");
      dd.className = "error";
      dd.textContent = error.message;
      list.replaceChildren(dd);
    }
  }

  fillZones();
  $("window-form").addEventListener("change", refresh);
  $("interval").addEventListener("change", refresh);
  $("compare").addEventListener("change", refresh);
  $("user-form").addEventListener("submit", lookUpUser);
  refresh();
})();
