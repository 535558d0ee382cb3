// leadflow's live dashboard: reads the projector's JSON routes and draws them as plain SVG.
//
// Safety rule (the HTML report's, kept here): nothing from the data is ever parsed as markup.
// Every element is made with createElement/createElementNS and every string from the data goes
// in through textContent or setAttribute; no API that parses HTML is used in this file (a test
// checks it). The page's Content-Security-Policy allows this script only.
//
// Every figure taken from the API carries data-key (the JSON path of the value, as a JSON array:
// section first) and data-value (the value as the API sent it), so a test can check that what
// the page shows is what the API says.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const DASH = "\u2014";
  const NA = "n/a";
  const PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2",
    "#9D755D", "#EECA3B", "#FF9DA6", "#BAB0AC"];
  const SHOWN = 25; // rows of a long table (waiting leads, deadlines, alerts, campaigns)
  const ALERTS_RETRY_TICKS = 30; // how often a projector without /alerts is asked again

  let config = { refresh_ms: 500, attribution_refresh_ms: 30000, milestones: [], models: [],
    labels: {}, funnel_steps: [] };
  let attributionFetched = -Infinity; // when (performance.now()) attribution was last fetched
  let lastKey = null;
  let ticks = 0;
  let alertsEnabled = null; // null: not asked yet
  let seenAlerts = null; // ids of alerts already shown (null until the first answer)
  let data = { pipeline: null, timing: null, funnel: null, attribution: null, alerts: null };

  // -- building the DOM without markup ------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    append(node, children);
    return node;
  }

  function sv(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    append(node, children);
    return node;
  }

  function setProps(node, props) {
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else node.setAttribute(name, String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  // A figure from the API: its text, and where it came from.
  function figure(props, path, value) {
    return Object.assign({}, props, {
      "data-key": JSON.stringify(path),
      "data-value": JSON.stringify(value === undefined ? null : value),
    });
  }

  // -- formatting: as leadflow.report formats the same figures -------------------------------

  function num(value) {
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  }
  function grouped(value, places) {
    return value.toLocaleString("en-US", {
      minimumFractionDigits: places, maximumFractionDigits: places, useGrouping: true,
    });
  }
  const fmt = {
    int: (v) => (num(v) === null ? DASH : grouped(Math.round(v), 0)),
    money: (v) => (num(v) === null ? DASH : grouped(v, 2)),
    decimal: (v) => (num(v) === null ? DASH : grouped(v, 2)),
    pct: (v) => (num(v) === null ? DASH : `${grouped(v * 100, 1)} %`),
    hours: (v) => (num(v) === null ? DASH : `${grouped(v, 1)} h`),
  };

  function label(kind, name) {
    const labels = (config.labels || {})[kind] || {};
    return Object.prototype.hasOwnProperty.call(labels, name) ? labels[name] : name;
  }

  // -- charts -------------------------------------------------------------------------------

  const WIDTH = 640;
  const LABEL_W = 150;
  const VALUE_W = 110;
  const ROW_H = 24;

  function empty(container, message) {
    container.replaceChildren(el("p", { className: "note empty", text: message }));
  }

  function frame(rows, extra) {
    const height = rows * ROW_H + 16 + (extra || 0);
    return sv("svg", {
      viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, role: "img",
      preserveAspectRatio: "xMinYMin meet",
    });
  }

  // Horizontal bars, one a row: {label, value, path, shown}.
  function bars(container, rows, color) {
    if (!rows.length) return empty(container, "no data yet");
    const max = Math.max(...rows.map((r) => num(r.value) || 0), 0) || 1;
    const span = WIDTH - LABEL_W - VALUE_W;
    const svg = frame(rows.length);
    rows.forEach((row, i) => {
      const y = 8 + i * ROW_H;
      const width = Math.max(0, ((num(row.value) || 0) / max) * span);
      svg.append(
        sv("text", { x: LABEL_W - 8, y: y + 15, "text-anchor": "end" }, row.label),
        sv("rect", figure({ class: "bar", x: LABEL_W, y: y + 3, width: width.toFixed(2),
          height: ROW_H - 6, fill: color || PALETTE[0], rx: 2 }, row.path, row.value)),
        sv("text", figure({ class: "value", x: LABEL_W + width + 6, y: y + 15 }, row.path,
          row.value), row.shown),
      );
    });
    svg.append(sv("line", { class: "axis", x1: LABEL_W, x2: LABEL_W, y1: 4,
      y2: rows.length * ROW_H + 12 }));
    container.replaceChildren(svg);
  }

  // Bars split in parts, one a row: {label, parts: [{series, value, path}]}; series named.
  function stacked(container, rows, series, shownTotal) {
    if (!rows.length) return empty(container, "no data yet");
    const totals = rows.map((r) => r.parts.reduce((sum, p) => sum + (num(p.value) || 0), 0));
    const max = Math.max(...totals, 0) || 1;
    const span = WIDTH - LABEL_W - VALUE_W;
    const colors = new Map(series.map((name, i) => [name, PALETTE[i % PALETTE.length]]));
    const svg = frame(rows.length);
    rows.forEach((row, i) => {
      const y = 8 + i * ROW_H;
      let x = LABEL_W;
      svg.append(sv("text", { x: LABEL_W - 8, y: y + 15, "text-anchor": "end" }, row.label));
      for (const part of row.parts) {
        const width = ((num(part.value) || 0) / max) * span;
        if (width <= 0) continue;
        svg.append(sv("rect", figure({ class: "bar", x: x.toFixed(2), y: y + 3,
          width: width.toFixed(2), height: ROW_H - 6, fill: colors.get(part.series) },
          part.path, part.value),
        sv("title", {}, `${seriesLabel(part.series)}: ${fmt.int(part.value)}`)));
        x += width;
      }
      svg.append(sv("text", { class: "value muted", x: x + 6, y: y + 15 },
        (shownTotal || fmt.int)(totals[i])));
    });
    container.replaceChildren(legend(series, colors), svg);
  }

  // Several bars a row (one per series): {label, values: [{series, value, path}]}.
  function groupedBars(container, rows, series, shown) {
    if (!rows.length) return empty(container, "no data yet");
    const values = rows.flatMap((r) => r.values.map((v) => num(v.value) || 0));
    const max = Math.max(...values, 0) || 1;
    const span = WIDTH - LABEL_W - VALUE_W;
    const colors = new Map(series.map((name, i) => [name, PALETTE[i % PALETTE.length]]));
    const band = ROW_H * Math.max(1, series.length * 0.75);
    const svg = sv("svg", { viewBox: `0 0 ${WIDTH} ${rows.length * band + 16}`, width: WIDTH,
      height: rows.length * band + 16, role: "img", preserveAspectRatio: "xMinYMin meet" });
    const bar = (band - 8) / series.length;
    rows.forEach((row, i) => {
      const y = 8 + i * band;
      svg.append(sv("text", { x: LABEL_W - 8, y: y + band / 2 + 4, "text-anchor": "end" },
        row.label));
      row.values.forEach((v, j) => {
        const width = ((num(v.value) || 0) / max) * span;
        const top = y + 4 + j * bar;
        svg.append(
          sv("rect", figure({ class: "bar", x: LABEL_W, y: top.toFixed(2), width: width.toFixed(2),
            height: Math.max(1, bar - 2).toFixed(2), fill: colors.get(v.series) }, v.path, v.value)),
          sv("text", figure({ class: "value", x: LABEL_W + width + 6, y: (top + bar - 3).toFixed(2),
            "font-size": 10 }, v.path, v.value), shown(v.value)),
        );
      });
    });
    container.replaceChildren(legend(series, colors), svg);
  }

  const SERIES_LABELS = { median_hours: "median", mean_hours: "mean", p90_hours: "p90" };

  function seriesLabel(name) {
    return Object.prototype.hasOwnProperty.call(SERIES_LABELS, name) ? SERIES_LABELS[name]
      : label("stages", name);
  }

  function legend(series, colors) {
    return el("div", { className: "legend" }, series.map((name) => {
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = colors.get(name); // CSSOM, not a style attribute (CSP)
      return el("span", {}, swatch, seriesLabel(name));
    }));
  }

  function table(headings, rows) {
    return el("div", { className: "wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { text: h })))),
      el("tbody", {}, rows)));
  }

  function cell(text, props) {
    return el("td", Object.assign({ text }, props || {}));
  }

  // -- panels -------------------------------------------------------------------------------

  function renderCards() {
    const funnel = data.funnel || {};
    const pipeline = data.pipeline || {};
    const cards = [];
    for (const [key, name] of config.funnel_steps) {
      cards.push([name, ["funnel", key], funnel[key], fmt.int]);
    }
    // Money in several currencies without exchange rates has no one figure: said, never summed.
    const several = !funnel.currency && Object.keys(funnel.by_currency || {}).length > 0;
    const money = several ? () => "per currency" : fmt.money;
    const amount = (value) => (several ? "" : value);
    cards.push(["Spend", ["funnel", "spend"], amount(funnel.spend), money]);
    cards.push(["Cost per lead", ["funnel", "cost_per_lead"], amount(funnel.cost_per_lead), money]);
    cards.push(["CAC", ["funnel", "cac"], amount(funnel.cac), money]);
    const waiting = Array.isArray(pipeline.sla_waiting) ? pipeline.sla_waiting.length : null;
    const nodes = cards.map(([name, path, value, shown]) => el("div", { className: "card" },
      el("div", { className: "label", text: name }),
      el("div", figure({ className: "value", text: value === null ? NA : shown(value) },
        path, value))));
    nodes.push(el("div", { className: waiting ? "card alarm" : "card" },
      el("div", { className: "label", text: "Waiting past an SLA" }),
      el("div", { className: "value", id: "waiting-count", "data-value": waiting,
        text: fmt.int(waiting) })));
    if (alertsEnabled && data.alerts) {
      const open = (data.alerts.open_deadlines || []).length;
      nodes.push(el("div", { className: "card" },
        el("div", { className: "label", text: "Open deadlines" }),
        el("div", { className: "value", id: "open-deadlines-count", "data-value": open,
          text: fmt.int(open) })));
    }
    document.getElementById("cards").replaceChildren(...nodes);
  }

  function renderFunnel() {
    const funnel = data.funnel || {};
    const rows = [];
    let previous = null;
    for (const [key, name] of config.funnel_steps) {
      const value = funnel[key];
      if (value === null) {
        rows.push({ label: name, value: 0, path: ["funnel", key], shown: NA });
        continue;
      }
      const rate = previous ? ` (${fmt.pct(value / previous)} of the step before)` : "";
      rows.push({ label: name, value, path: ["funnel", key], shown: fmt.int(value) + rate });
      previous = num(value);
    }
    bars(document.getElementById("chart-funnel"), rows);
  }

  function renderPipeline() {
    const pipeline = data.pipeline || {};
    const byStage = pipeline.by_stage || {};
    const rows = Object.entries(byStage).filter(([, count]) => count !== null).map(
      ([stage, count]) => ({ label: label("stages", stage), value: count,
        path: ["pipeline", "by_stage", stage], shown: fmt.int(count) }));
    bars(document.getElementById("chart-pipeline"), rows, PALETTE[0]);
    const stages = Object.keys(byStage).filter((stage) => byStage[stage] !== null);
    const byChannel = pipeline.by_channel || {};
    const channelRows = Object.entries(byChannel).map(([channel, counts]) => ({
      label: channel,
      parts: stages.filter((s) => counts[s]).map((s) => ({ series: s, value: counts[s],
        path: ["pipeline", "by_channel", channel, s] })),
    }));
    stacked(document.getElementById("chart-pipeline-channel"), channelRows, stages);
  }

  const DURATIONS = ["median_hours", "mean_hours", "p90_hours"];

  function durationRows(section, name, keep) {
    return Object.entries(section || {}).filter(([, stats]) => stats && keep(stats)).map(
      ([key, stats]) => ({
        label: label("stages", key),
        values: DURATIONS.map((d) => ({ series: d, value: stats[d],
          path: ["timing", name, key, d] })),
      }));
  }

  function renderTiming() {
    const timing = data.timing || {};
    groupedBars(document.getElementById("chart-time-in-stage"),
      durationRows(timing.by_stage, "by_stage", (s) => s.count > 0), DURATIONS, fmt.hours);
    groupedBars(document.getElementById("chart-speed-to-lead"),
      durationRows(timing.speed_to_lead, "speed_to_lead", (s) => s.count > 0), DURATIONS,
      fmt.hours);
  }

  const OUTCOMES = ["met", "late", "unanswered", "pending"];

  function renderSla() {
    const breaches = (data.timing || {}).sla_breaches || {};
    const rows = Object.entries(breaches).filter(([, s]) => s).map(([sla, s]) => ({
      label: `${label("stages", sla)} (${fmt.decimal(s.sla_hours)} h)`,
      parts: OUTCOMES.map((o) => ({ series: o, value: s[o],
        path: ["timing", "sla_breaches", sla, o] })),
    }));
    stacked(document.getElementById("chart-sla"), rows, OUTCOMES);
    const waiting = Array.isArray((data.pipeline || {}).sla_waiting)
      ? data.pipeline.sla_waiting.slice() : [];
    const target = document.getElementById("sla-waiting");
    if (!waiting.length) return empty(target, "no lead waits past an SLA");
    const order = waiting.map((row, index) => [row, index]);
    order.sort((a, b) => (num(b[0].overdue_hours) || 0) - (num(a[0].overdue_hours) || 0));
    const waitingRows = order.slice(0, SHOWN).map(([row, index]) => el("tr", {},
      cell(row.lead_id), cell(label("stages", row.stage)), cell(row.channel),
      cell(row.since),
      cell(fmt.hours(row.overdue_hours), figure({ className: "num" },
        ["pipeline", "sla_waiting", index, "overdue_hours"], row.overdue_hours))));
    target.replaceChildren(
      el("p", { className: "note", text: `${fmt.int(waiting.length)} leads wait past an SLA` +
        (waiting.length > SHOWN ? `; the ${SHOWN} longest overdue:` : ":") }),
      table(["Lead", "Stage", "Channel", "Since", "Overdue"], waitingRows));
  }

  function renderAlerts() {
    const state = document.getElementById("alerts-state");
    const openTarget = document.getElementById("open-deadlines");
    const recentTarget = document.getElementById("recent-alerts");
    if (alertsEnabled === false) {
      state.textContent = "SLA alerts are not enabled on this projector (GET /alerts answered " +
        "404): the waiting list above is computed from the read models.";
      openTarget.replaceChildren();
      recentTarget.replaceChildren();
      return;
    }
    if (!data.alerts) return;
    const open = Array.isArray(data.alerts.open_deadlines) ? data.alerts.open_deadlines : [];
    const recent = Array.isArray(data.alerts.alerts) ? data.alerts.alerts : [];
    const fresh = new Set();
    for (const alert of recent) {
      const id = alert && alert.alert_id;
      if (seenAlerts !== null && id && !seenAlerts.has(id)) fresh.add(id);
    }
    seenAlerts = new Set(recent.map((a) => a && a.alert_id).filter(Boolean));
    state.textContent = `${fmt.int(open.length)} open deadlines, ${fmt.int(recent.length)} recent ` +
      "alerts" + (fresh.size ? ` (${fmt.int(fresh.size)} new)` : "");
    const now = Date.now();
    const byDeadline = open.map((d, index) => [d, index]);
    byDeadline.sort((a, b) => String(a[0].deadline).localeCompare(String(b[0].deadline)));
    openTarget.replaceChildren(open.length ? table(["Lead", "Stage", "Deadline", "Due in", "Owner"],
      byDeadline.slice(0, SHOWN).map(([d, index]) => {
        const due = Date.parse(d.deadline);
        const left = Number.isFinite(due) ? (due - now) / 3600000 : null;
        return el("tr", { "data-index": index }, cell(d.lead_id), cell(label("stages", d.stage)),
          cell(d.deadline), cell(fmt.hours(left), { className: "num" }), cell(d.owner || DASH));
      })) : el("p", { className: "note", text: "no open deadline" }));
    recentTarget.replaceChildren(recent.length ? table(
      ["Alert", "Lead", "Stage", "Deadline", "Waited", "Owner"],
      recent.slice(0, SHOWN).map((a, index) => {
        const kind = a.kind === "sla_warning" ? "sla_warning" : "sla_breached";
        const waited = num(a.waited_seconds) === null ? null : a.waited_seconds / 3600;
        return el("tr", { className: fresh.has(a.alert_id) ? `${kind} new` : kind },
          cell(a.kind === "sla_warning" ? "warning" : a.kind === "sla_breached" ? "breached" : a.kind),
          cell(a.lead_id), cell(label("stages", a.stage)), cell(a.deadline),
          cell(fmt.hours(waited), figure({ className: "num" },
            ["alerts", "alerts", index, "waited_seconds"], a.waited_seconds)),
          cell(a.owner || DASH));
      })) : el("p", { className: "note", text: "no alert yet" }));
  }

  function chosen() {
    return {
      milestone: document.getElementById("milestone").value,
      model: document.getElementById("model").value,
    };
  }

  function renderAttribution() {
    const { milestone, model } = chosen();
    const target = document.getElementById("chart-attribution");
    const campaigns = document.getElementById("attribution-campaigns");
    const section = data.attribution || {};
    const byModel = section[milestone];
    const money = milestone === "revenue";
    const shown = money ? fmt.money : fmt.decimal;
    const currencies = Object.keys(section.revenue_by_currency || {});
    if (byModel === null && money && currencies.length > 1) {
      // Won amounts in several currencies and no exchange rates: never one sum.
      empty(target, `won amounts in ${currencies.join(", ")} and no exchange rates: see ` +
        "leadflow report for each currency, or give the projector LEADFLOW_RATES_FILE");
      campaigns.replaceChildren();
      return;
    }
    if (byModel === null) {
      empty(target, `${NA}: the policy has no ${label("milestones", milestone)} stage`);
      campaigns.replaceChildren();
      return;
    }
    const credit = (byModel || {})[model] || {};
    const rows = Object.entries(credit).sort((a, b) => (num(b[1]) || 0) - (num(a[1]) || 0)).map(
      ([channel, value]) => ({ label: channel, value,
        path: ["attribution", milestone, model, channel], shown: shown(value) }));
    bars(target, rows, PALETTE[2]);
    const byCampaign = (((section.by_campaign || {})[milestone]) || {})[model] || {};
    const campaignRows = Object.entries(byCampaign)
      .sort((a, b) => (num(b[1]) || 0) - (num(a[1]) || 0)).slice(0, SHOWN)
      .map(([campaign, value]) => el("tr", {}, cell(campaign), cell(shown(value),
        figure({ className: "num" }, ["attribution", "by_campaign", milestone, model, campaign],
          value))));
    campaigns.replaceChildren(campaignRows.length
      ? table(["Campaign", money ? "Revenue credit" : "Credit"], campaignRows)
      : el("p", { className: "note", text: "no credit yet" }));
  }

  const ECONOMICS = [
    ["leads", "Leads", fmt.int], ["spend", "Spend", fmt.money],
    ["cost_per_lead", "Cost per lead", fmt.money],
    ["qualification_rate", "Qualification rate", fmt.pct],
    ["conversion_rate", "Conversion rate", fmt.pct], ["cac", "CAC", fmt.money],
    ["qualified_lead_value", "Qualified lead value", fmt.money],
  ];

  function renderEconomics() {
    const byChannel = (data.funnel || {}).by_channel || {};
    const channels = Object.keys(byChannel).sort();
    bars(document.getElementById("chart-economics"), channels.map((channel) => ({
      label: channel, value: byChannel[channel].cost_per_lead,
      path: ["funnel", "by_channel", channel, "cost_per_lead"],
      shown: fmt.money(byChannel[channel].cost_per_lead),
    })), PALETTE[1]);
    const target = document.getElementById("economics-table");
    if (!channels.length) return empty(target, "no data yet");
    target.replaceChildren(table(["Channel", ...ECONOMICS.map((e) => e[1])], channels.map(
      (channel) => el("tr", {}, cell(channel), ECONOMICS.map(([key, , shown]) => cell(
        shown(byChannel[channel][key]), figure({ className: "num" },
          ["funnel", "by_channel", channel, key], byChannel[channel][key])))))));
  }

  function renderAll() {
    renderCards();
    renderFunnel();
    renderPipeline();
    renderTiming();
    renderSla();
    renderAlerts();
    renderAttribution();
    renderEconomics();
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  }

  // -- talking to the projector -------------------------------------------------------------

  async function get(path) {
    const response = await fetch(path, {
      credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_error) {
      body = null;
    }
    return { status: response.status, body };
  }

  function problem(message) {
    const node = document.getElementById("problem");
    node.hidden = !message;
    node.textContent = message || "";
  }

  function status(text, kind) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.className = `status ${kind}`;
  }

  function attributionPath() {
    const { milestone, model } = chosen();
    const query = new URLSearchParams({ milestone, model });
    return `/attribution?${query.toString()}`;
  }

  async function fetchAlerts() {
    if (alertsEnabled === false && ticks % ALERTS_RETRY_TICKS !== 0) return false;
    const answer = await get("/alerts");
    const before = JSON.stringify(data.alerts);
    if (answer.status === 404) {
      const changed = alertsEnabled !== false;
      alertsEnabled = false;
      data.alerts = null;
      return changed;
    }
    if (answer.status !== 200 || !answer.body) return false;
    alertsEnabled = true;
    data.alerts = answer.body;
    return JSON.stringify(data.alerts) !== before;
  }

  // Attribution is computed under every model at once (Markov and Shapley included), seconds at
  // scale: after a change it is fetched again only once attribution_refresh_ms have passed.
  async function fetchSections() {
    const paths = { pipeline: "/pipeline", timing: "/timing", funnel: "/funnel" };
    const now = performance.now();
    if (now - attributionFetched >= config.attribution_refresh_ms) {
      paths.attribution = attributionPath();
      attributionFetched = now;
    }
    const names = Object.keys(paths);
    const answers = await Promise.all(names.map((name) => get(paths[name])));
    for (let i = 0; i < names.length; i += 1) {
      const answer = answers[i];
      if (answer.status !== 200) {
        throw new Error(`GET ${paths[names[i]]} answered ${answer.status}` +
          (answer.body && answer.body.error ? `: ${answer.body.error}` : ""));
      }
      data[names[i]] = answer.body;
    }
  }

  async function tick(force) {
    ticks += 1;
    try {
      const health = await get("/health");
      if (health.status === 401 || health.status === 403) {
        status("not allowed", "offline");
        problem(`the projector refused these credentials (${health.status}); reload the page ` +
          "and give a token with the read scope");
        return;
      }
      const h = health.body || {};
      if (h.status !== "live") {
        status(`rebuilding its read models (${fmt.int(h.lag)} messages to go)`, "rebuilding");
        problem(null);
        return;
      }
      const key = JSON.stringify([h.positions, h.store, h.counts]);
      const alertsChanged = await fetchAlerts();
      if (force || key !== lastKey) {
        await fetchSections();
        lastKey = key;
        renderAll();
        document.body.dataset.positions = JSON.stringify(h.positions || {});
        document.getElementById("updated").textContent =
          `updated ${new Date().toLocaleTimeString("en-GB")}`;
      } else if (alertsChanged) {
        renderCards();
        renderAlerts();
      }
      status(`live, ${fmt.int((h.counts || {}).applied)} lifecycle events folded`, "live");
      problem(null);
    } catch (error) {
      status("cannot reach the projector", "offline");
      problem(String(error && error.message ? error.message : error));
    } finally {
      window.setTimeout(() => tick(false), config.refresh_ms || 500);
    }
  }

  function fillChoice(select, values, kind, wanted, fallback) {
    select.replaceChildren(...values.map((value) => el("option", { value,
      text: label(kind, value) })));
    select.value = values.includes(wanted) ? wanted : (values.includes(fallback) ? fallback
      : values[0]);
  }

  async function start() {
    const answer = await get("/dashboard/config.json");
    if (answer.status === 200 && answer.body) config = answer.body;
    const hash = new URLSearchParams(window.location.hash.slice(1));
    fillChoice(document.getElementById("milestone"), config.milestones, "milestones",
      hash.get("milestone"), "lead");
    fillChoice(document.getElementById("model"), config.models, "models", hash.get("model"),
      "linear");
    const form = document.getElementById("attribution-choice");
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("change", async () => {
      const { milestone, model } = chosen();
      window.history.replaceState(null, "", `#${new URLSearchParams({ milestone, model })}`);
      const fresh = await get(attributionPath());
      if (fresh.status === 200) {
        data.attribution = fresh.body;
        renderAttribution();
        document.body.dataset.renders = String(Number(document.body.dataset.renders) + 1);
      }
    });
    tick(true);
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((error) => problem(String(error)));
  });
})();
