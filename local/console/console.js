/* Local console for the alert service (local only, never deployed).
 *
 * Uses only the public API, same-origin through the dev server's /api/ proxy, and the dev endpoints:
 *   POST /dev/tokens          a bearer token per role and subject
 *   GET  /dev/sms             every SMS the local AWS sent (the responders' phones)
 *   POST /dev/sms/inbound     a reply typed on a phone, published to the inbound-sms topic as AWS would
 * Everything is polled (SMS and the watched incident every second). Plain script, no build step.
 */
"use strict";

// --- demo data --------------------------------------------------------------------------------------------------
const SHOPPERS = [
  { sub: "s-maya", name: "Maya Chen" },
  { sub: "s-jonas", name: "Jonas Weber" },
  { sub: "s-priya", name: "Priya Rao" },
];
const KINDS = [
  ["panic", "Panic"], ["medical", "Medical emergency"], ["threat", "Threat"], ["accident", "Accident"],
  ["harassment", "Harassment"], ["conduct", "Conduct"], ["fraud", "Fraud"], ["account_breach", "Account breach"],
  ["privacy", "Privacy"], ["delivery_issue", "Delivery issue"],
];
const PLACES = [
  { id: "ferry", name: "Ferry Building, San Francisco", lat: 37.7955, lng: -122.3937, accuracy_m: 8 },
  { id: "dolores", name: "Dolores Park, San Francisco", lat: 37.7596, lng: -122.4269, accuracy_m: 15 },
  { id: "ggpark", name: "Golden Gate Park, San Francisco", lat: 37.7694, lng: -122.4862, accuracy_m: 25 },
  { id: "merritt", name: "Lake Merritt, Oakland", lat: 37.8044, lng: -122.259, accuracy_m: 20 },
  { id: "custom", name: "Custom coordinates…" },
  { id: "none", name: "Don't share location" },
];
const SERVICE_NUMBER = "+18005550100"; // the destination of replies (the dev server's default)
const DEMO_POLICY = "console-demo";
const DEMO_TIMEOUT_S = 5;
const SCENARIO_STEP_TIMEOUT_MS = 30000;

// --- small helpers ----------------------------------------------------------------------------------------------
const $ = (selector, root = document) => root.querySelector(selector);
const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const parseTime = (iso) => (iso ? Date.parse(iso) : NaN);
const clockTime = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

function duration(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function ago(ms) {
  const s = (Date.now() - ms) / 1000;
  if (s < 2) return "just now";
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function prettyPhone(e164) {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164 || "");
  return m ? `+1 ${m[1]}-${m[2]}-${m[3]}` : e164 || "";
}

const initials = (name) => (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
const kindLabel = (kind) => (KINDS.find(([k]) => k === kind) || [kind, kind])[1];

// --- HTTP -------------------------------------------------------------------------------------------------------
async function call(method, path, { token, body, headers } = {}) {
  const init = { method, headers: { ...(headers || {}) }, cache: "no-store" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { raw: text }; }
  }
  return { ok: response.ok, status: response.status, data };
}

function errorText(result) {
  const error = result.data && result.data.error;
  if (!error) return `HTTP ${result.status}`;
  let text = error.message || error.code || `HTTP ${result.status}`;
  if (Array.isArray(error.details) && error.details.length) {
    text += ": " + error.details.map((d) => `${d.field} ${d.problem}`).join("; ");
  }
  return text;
}

const tokens = new Map();

async function tokenFor(role, sub, fresh = false) {
  const key = `${role}:${sub}`;
  if (!fresh && tokens.has(key)) return tokens.get(key);
  const result = await call("POST", "/dev/tokens", { body: { role, sub } });
  if (!result.ok) throw new Error(`could not get a ${role} token: ${errorText(result)}`);
  tokens.set(key, result.data.token);
  return result.data.token;
}

/** The public API through the dev server's proxy, as `role`/`sub`. A 401 (expired token) is retried once. */
async function api(role, sub, method, path, body, headers) {
  let result = await call(method, `/api${path}`, { token: await tokenFor(role, sub), body, headers });
  if (result.status === 401) {
    result = await call(method, `/api${path}`, { token: await tokenFor(role, sub, true), body, headers });
  }
  return result;
}
const asAdmin = (method, path, body) => api("admin", "console-admin", method, path, body);
const asReviewer = (method, path) => api("reviewer", "console-reviewer", method, path);

// --- state ------------------------------------------------------------------------------------------------------
const state = {
  roster: [],                 // responders from GET /v1/responders
  phones: new Map(),          // responder id -> phone card controller
  seenSms: new Set(),         // message ids already shown on a phone
  smsLoaded: false,           // the first /dev/sms answer (history) was shown
  shopper: null,              // {sub, incident} the incident opened from the shopper panel
  watchId: null,              // the incident shown in the timeline
  watched: null,              // {incident, events} of watchId
  policies: new Map(),        // policy id -> policy (for tier timeouts) or null when unknown
  incidents: [],
  scenarioRunning: false,
};

function responderByPhone(phone) {
  return state.roster.find((r) => r.phone === phone);
}

function responderName(idOrActor) {
  const id = (idOrActor || "").replace(/^responder:/, "");
  const responder = state.roster.find((r) => r.id === id);
  return responder ? responder.name : idOrActor;
}

/** Run `task` now and then every `ms` after it settles (never overlapping itself). */
function every(ms, task) {
  const loop = async () => {
    try { await task(); } catch (error) { console.debug("poll failed", error); }
    setTimeout(loop, ms);
  };
  loop();
}

// --- shopper panel ----------------------------------------------------------------------------------------------
const shopperForm = byTestId("shopper-form");
const shopperSelect = byTestId("shopper-select");
const kindSelect = byTestId("kind-select");
const locationSelect = byTestId("location-select");
const panicButton = byTestId("panic-button");

function initShopperForm() {
  for (const s of SHOPPERS) shopperSelect.append(h("option", { value: s.sub }, `${s.name} (${s.sub})`));
  for (const [kind, label] of KINDS) kindSelect.append(h("option", { value: kind }, label));
  for (const p of PLACES) locationSelect.append(h("option", { value: p.id }, p.name));
  const syncKind = () => { byTestId("panic-kind").textContent = kindLabel(kindSelect.value); };
  const syncPlace = () => { byTestId("custom-location").hidden = locationSelect.value !== "custom"; };
  kindSelect.addEventListener("change", syncKind);
  locationSelect.addEventListener("change", syncPlace);
  syncKind();
  syncPlace();
  shopperForm.addEventListener("submit", (event) => { event.preventDefault(); press(); });
  byTestId("cancel-form").addEventListener("submit", (event) => { event.preventDefault(); cancelAlert(); });
  byTestId("share-location-button").addEventListener("click", shareLocation);
}

function showError(testId, message) {
  const el = byTestId(testId);
  el.textContent = message || "";
  el.hidden = !message;
}

/** The location chosen in the form, or null ("don't share"); throws on bad custom coordinates. */
function chosenLocation() {
  const place = PLACES.find((p) => p.id === locationSelect.value);
  if (place.id === "none") return null;
  if (place.id !== "custom") return { lat: place.lat, lng: place.lng, accuracy_m: place.accuracy_m };
  const lat = Number(byTestId("lat-input").value);
  const lng = Number(byTestId("lng-input").value);
  const accuracy = byTestId("accuracy-input").value.trim();
  if (!Number.isFinite(lat) || !Number.isFinite(lng)) throw new Error("latitude and longitude must be numbers");
  const location = { lat, lng };
  if (accuracy) location.accuracy_m = Number(accuracy);
  return location;
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `console-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** The big button: POST /v1/incidents as the chosen shopper. Returns the incident, or null on an error. */
async function press() {
  showError("shopper-error", "");
  let body;
  try {
    body = { kind: kindSelect.value };
    const location = chosenLocation();
    if (location) body.location = location;
  } catch (error) {
    showError("shopper-error", error.message);
    return null;
  }
  const pin = byTestId("pin-input").value.trim();
  const order = byTestId("order-input").value.trim();
  if (pin) body.cancel_pin = pin;
  if (order) body.order_id = order;
  const sub = shopperSelect.value;
  panicButton.disabled = true;
  panicButton.classList.add("pressing");
  try {
    const result = await api("shopper", sub, "POST", "/v1/incidents", body, { "Idempotency-Key": newKey() });
    if (!result.ok) {
      showError("shopper-error", `Not sent: ${errorText(result)}`);
      return null;
    }
    const incident = result.data.incident;
    state.shopper = { sub, incident, pin };
    byTestId("cancel-pin-input").value = "";
    showError("cancel-error", "");
    renderShopperIncident();
    watch(incident.id);
    refreshIncidents();
    return incident;
  } catch (error) {
    showError("shopper-error", `Not sent: ${error.message}`);
    return null;
  } finally {
    panicButton.disabled = false;
    panicButton.classList.remove("pressing");
  }
}

async function cancelAlert() {
  if (!state.shopper) return;
  const { sub, incident } = state.shopper;
  const pin = byTestId("cancel-pin-input").value.trim();
  const button = byTestId("cancel-button");
  button.disabled = true;
  try {
    const body = { reason: "cancelled by the shopper (console)" };
    if (pin) body.pin = pin;
    const result = await api("shopper", sub, "POST", `/v1/incidents/${incident.id}/cancel`, body);
    if (!result.ok) {
      showError("cancel-error", result.status === 403 ? `Not cancelled: ${errorText(result)}` : errorText(result));
    } else {
      showError("cancel-error", "");
      state.shopper.incident = result.data.incident || state.shopper.incident;
      renderShopperIncident();
    }
  } finally {
    button.disabled = false;
    pollShopper();
    pollWatched();
  }
}

async function shareLocation() {
  if (!state.shopper) return;
  let location;
  try {
    location = chosenLocation();
  } catch (error) {
    showError("cancel-error", error.message);
    return;
  }
  if (!location) {
    showError("cancel-error", "Pick a location to share.");
    return;
  }
  const { sub, incident } = state.shopper;
  const result = await api("shopper", sub, "POST", `/v1/incidents/${incident.id}/locations`, location);
  showError("cancel-error", result.ok ? "" : errorText(result));
  pollWatched();
}

async function pollShopper() {
  if (!state.shopper) return;
  const { sub, incident } = state.shopper;
  const result = await api("shopper", sub, "GET", `/v1/incidents/${incident.id}`);
  if (result.ok && state.shopper && state.shopper.incident.id === incident.id) {
    state.shopper.incident = result.data.incident;
    renderShopperIncident();
  }
}

function renderShopperIncident() {
  const card = byTestId("shopper-incident");
  if (!state.shopper) { card.hidden = true; return; }
  const incident = state.shopper.incident;
  card.hidden = false;
  byTestId("incident-reference").textContent = incident.reference;
  byTestId("incident-code").textContent = incident.code || "—";
  setBadge(byTestId("incident-status"), incident.status);
  const esc = incident.escalation || {};
  byTestId("incident-tier").textContent = incident.status === "routed" ? "routed to standard support (not paged)"
    : esc.exhausted ? `every tier paged (${esc.policy}), still waiting`
    : esc.tier ? `tier ${esc.tier} of policy ${esc.policy}` : `starting (${esc.policy || "…"})`;
  let responder = "waiting for a responder…";
  if (incident.acknowledged_at) {
    const took = duration(parseTime(incident.acknowledged_at) - parseTime(incident.created_at));
    responder = `${incident.acknowledged_by_name || incident.acknowledged_by} is on it (acknowledged after ${took})`;
  }
  if (incident.status === "resolved") responder = `resolved by ${incident.acknowledged_by_name || "a responder"}` + (incident.outcome ? ` (${incident.outcome.replace(/_/g, " ")})` : "");
  if (incident.status === "cancelled") responder = "cancelled: responders were told";
  if (incident.status === "routed") responder = "standard support will follow up";
  byTestId("incident-responder").textContent = responder;
  const open = incident.status === "triggered" || incident.status === "acknowledged";
  byTestId("cancel-form").hidden = !open;
  byTestId("share-location-button").hidden = !open;
}

function setBadge(el, status) {
  el.dataset.status = status || "";
  el.textContent = status || "—";
  el.hidden = !status;
}

// --- incidents list and the watched incident --------------------------------------------------------------------
function watch(incidentId) {
  if (state.watchId !== incidentId) {
    state.watchId = incidentId;
    state.watched = null;
    renderTimeline(true);
  }
  renderIncidentList();
  pollWatched();
}

async function refreshIncidents() {
  const result = await asReviewer("GET", "/v1/incidents?limit=12");
  if (!result.ok) return;
  state.incidents = result.data.incidents || [];
  if (!state.watchId) {
    const open = state.incidents.find((i) => i.status === "triggered" || i.status === "acknowledged");
    if (open) { watch(open.id); return; }
  }
  renderIncidentList();
}

function renderIncidentList() {
  const list = byTestId("incident-list");
  if (!state.incidents.length) return;
  list.replaceChildren(...state.incidents.map((incident) => h("li", {
    class: "incident-row",
    "data-testid": "incident-row",
    "data-id": incident.id,
    "aria-current": incident.id === state.watchId ? "true" : "false",
    onclick: () => watch(incident.id),
  },
  h("span", { class: "ref" }, incident.reference),
  h("span", {}, kindLabel(incident.kind)),
  h("span", { class: "badge", "data-status": incident.status }, incident.status),
  h("span", { class: "age", "data-at": parseTime(incident.created_at) }, ago(parseTime(incident.created_at))))));
}

async function pollWatched() {
  const id = state.watchId;
  if (!id) return;
  const [incident, timeline] = await Promise.all([
    asReviewer("GET", `/v1/incidents/${id}`),
    asReviewer("GET", `/v1/incidents/${id}/timeline`),
  ]);
  if (id !== state.watchId || !incident.ok || !timeline.ok) return;
  // The tier timeouts first, so the countdown never shows an incident without them.
  const policyId = incident.data.incident.escalation && incident.data.incident.escalation.policy;
  if (policyId && !state.policies.has(policyId)) {
    const result = await asAdmin("GET", `/v1/escalation-policies/${policyId}`);
    state.policies.set(policyId, result.ok ? result.data.policy : null);
  }
  if (id !== state.watchId) return;
  const previous = state.watched;
  state.watched = { incident: incident.data.incident, events: timeline.data.events || [] };
  const changed = !previous || previous.events.length !== state.watched.events.length
    || previous.incident.status !== state.watched.incident.status;
  if (changed) {
    renderTimeline(false);
    renderPhoneRoles();
    const row = state.incidents.find((i) => i.id === id);
    if (row && row.status !== state.watched.incident.status) { row.status = state.watched.incident.status; renderIncidentList(); }
  }
}

/** What a timeline event says, for people: [headline, detail]. */
function describe(event) {
  const d = event.details || {};
  const who = (actor) => (actor || "").startsWith("responder:") ? responderName(actor) : actor || "the service";
  switch (event.type) {
    case "created":
      return [`Alert raised: ${kindLabel(d.kind)} (${d.severity})`, `by ${who(event.actor)} · routed to policy ${d.policy}`];
    case "location_updated":
      return ["Location updated", [d.lat, d.lng].filter((v) => v !== undefined).join(", ")];
    case "paged":
      if (d.purpose === "exhausted") return [`Exhausted notice to ${d.name || d.responder}`, prettyPhone(d.to)];
      return [`Paged ${d.name || d.responder} · tier ${d.tier}`, `SMS to ${prettyPhone(d.to)}`];
    case "notice_sent":
      return [`${(d.purpose || "notice").replace(/_/g, " ")} notice to ${responderName(d.responder) || d.name}`, prettyPhone(d.to)];
    case "escalated":
      return [`Escalated to tier ${d.tier}`, d.trigger === "manual" ? "a responder asked to escalate (ESC)" : `nobody acknowledged in time${d.round ? ` · round ${d.round + 1}` : ""}`];
    case "escalation_exhausted":
      return ["Escalation exhausted", `every tier was paged (${d.steps} steps); everyone is told`];
    case "sms_received":
      return [`SMS from ${who(event.actor)}`, `“${d.body}”${d.command ? ` → ${d.command}` : ""}`];
    case "acknowledged":
      return [`Acknowledged by ${d.name || who(event.actor)}`, `via ${d.via || "api"}${d.tier ? ` · tier ${d.tier}` : ""}`];
    case "resolved":
      return [`Resolved: ${(d.outcome || "").replace(/_/g, " ")}`, d.note ? `“${d.note}”` : `by ${who(event.actor)}`];
    case "cancelled":
      return ["Cancelled by the shopper", d.reason || ""];
    case "cancel_rejected":
      return ["Cancel rejected", d.reason || ""];
    case "note_added":
      return [`Note by ${who(event.actor)}`, d.text || ""];
    case "rejected_command":
      return ["Rejected SMS command", JSON.stringify(d)];
    default:
      return [event.type.replace(/_/g, " "), Object.keys(d).length ? JSON.stringify(d) : ""];
  }
}

function renderTimeline(reset) {
  const list = byTestId("timeline");
  const watched = state.watched;
  const statusBadge = byTestId("timeline-status");
  if (reset || !watched) {
    list.replaceChildren();
    byTestId("timeline-reference").textContent = "";
    setBadge(statusBadge, "");
    list.dataset.count = "0";
    renderCountdown();
    return;
  }
  byTestId("timeline-reference").textContent = watched.incident.reference;
  setBadge(statusBadge, watched.incident.status);
  const created = parseTime(watched.incident.created_at);
  const shown = Number(list.dataset.count || 0);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  for (const event of watched.events.slice(shown)) {
    const [what, detail] = describe(event);
    const at = parseTime(event.at);
    list.append(h("li", { class: shown ? "event fresh" : "event", "data-testid": "timeline-event", "data-type": event.type, "data-seq": event.seq },
      h("span", { class: "mark" }),
      h("div", {},
        h("div", { class: "what" }, what),
        detail ? h("div", { class: "detail" }, detail) : null,
        h("div", { class: "when", title: event.at },
          h("span", { class: "offset" }, `+${duration(at - created)}`), ` · ${clockTime(at)} · `,
          h("span", { class: "ago", "data-at": at }, ago(at))))));
  }
  list.dataset.count = String(watched.events.length);
  if (atBottom || !shown) list.scrollTop = list.scrollHeight;
  renderCountdown();
}

/** Where the escalation stands and when its next step is due, from the timeline and the policy's timeouts. */
function escalationClock() {
  const watched = state.watched;
  if (!watched) return { state: "idle", title: "No incident selected", sub: "Press the button or pick an incident above." };
  const { incident, events } = watched;
  const esc = incident.escalation || {};
  const done = {
    acknowledged: `Acknowledged by ${incident.acknowledged_by_name || incident.acknowledged_by}: timers stopped`,
    resolved: "Resolved: timers stopped",
    cancelled: "Cancelled: timers stopped",
    routed: "Routed to standard support: nobody is paged",
  };
  if (done[incident.status]) {
    const took = incident.acknowledged_at ? `acknowledged ${duration(parseTime(incident.acknowledged_at) - parseTime(incident.created_at))} after the press` : "";
    return { state: "stopped", title: done[incident.status], sub: took };
  }
  if (esc.exhausted) return { state: "exhausted", title: "Every tier was paged", sub: "still waiting for an ACK" };
  const policy = state.policies.get(esc.policy);
  if (!policy || !policy.tiers || !policy.tiers.length) return { state: "unknown", title: `Policy ${esc.policy}`, sub: "tier timeouts unknown (admin API)", progress: 0 };
  const tiers = policy.tiers.length;
  const steps = tiers * ((policy.repeat || 0) + 1);
  const escalations = events.filter((e) => e.type === "escalated");
  const last = escalations[escalations.length - 1];
  const step = last ? (Number.isInteger(last.details.step) ? last.details.step : escalations.length) : 0;
  const start = last ? parseTime(last.at) : parseTime(incident.created_at); // the first Wait begins at the press
  const tier = (step % tiers) + 1;
  const round = Math.floor(step / tiers);
  const timeoutMs = policy.tiers[tier - 1].timeout_s * 1000;
  const remaining = start + timeoutMs - Date.now();
  const next = step + 1 < steps ? `tier ${((step + 1) % tiers) + 1}` : "exhausted";
  const title = `Tier ${tier} of ${tiers}${policy.repeat ? ` · round ${round + 1} of ${policy.repeat + 1}` : ""} · ${esc.policy}`;
  const verb = next === "exhausted" ? "escalation exhausted" : `escalates to ${next}`;
  const sub = remaining > 0 ? `${verb} in ${duration(remaining)}` : `${verb} now…`;
  return { state: "running", title, sub, progress: Math.min(1, Math.max(0, 1 - remaining / timeoutMs)) };
}

function renderCountdown() {
  const el = byTestId("tier-countdown");
  const clock = escalationClock();
  el.dataset.state = clock.state;
  $(".countdown-title", el).textContent = clock.title;
  $(".countdown-sub", el).textContent = clock.sub || "";
  $(".bar-fill", el).style.width = `${Math.round((clock.progress || 0) * 100)}%`;
}

// --- phones -----------------------------------------------------------------------------------------------------
const SENT_KEY = "console.sent-replies";
const sentReplies = () => { try { return JSON.parse(sessionStorage.getItem(SENT_KEY) || "[]"); } catch { return []; } };

function rememberReply(reply) {
  const all = sentReplies();
  all.push(reply);
  try { sessionStorage.setItem(SENT_KEY, JSON.stringify(all.slice(-200))); } catch { /* private mode: fine */ }
}

function makePhone(responder) {
  const list = h("ol", { class: "sms-list", "data-testid": "sms-list", "aria-live": "polite" }, h("li", { class: "empty" }, "No messages yet"));
  const input = h("input", { "data-testid": "reply-input", placeholder: "Text message", autocomplete: "off", "aria-label": `Reply as ${responder.name}` });
  const send = h("button", { type: "submit", "data-testid": "reply-send", "aria-label": "Send", title: "Send" }, "↑");
  const chips = h("div", { class: "chips", "data-testid": "reply-chips" });
  const role = h("span", { class: "badge phone-role", "data-testid": "phone-role" });
  const clock = h("span", { class: "clock" }, clockTime(Date.now()).slice(0, 5));
  const form = h("form", { class: "reply", "data-testid": "reply-form", autocomplete: "off" }, input, send);
  const card = h("article", { class: "phone", "data-testid": `phone-${responder.id}`, "data-responder": responder.id, "data-phone": responder.phone },
    h("header", { class: "phone-owner" },
      h("span", { class: "avatar" }, initials(responder.name)),
      h("div", { class: "who" }, h("strong", {}, responder.name), h("small", {}, prettyPhone(responder.phone))),
      role),
    h("div", { class: "device" },
      h("div", { class: "statusbar" }, clock, h("span", { class: "notch" }), h("span", {}, "5G ▮▮▮")),
      h("div", { class: "convo-head" }, h("span", { class: "sender" }, "!"), h("div", {}, "T&S Alerts", h("small", {}, prettyPhone(SERVICE_NUMBER)))),
      list, chips, form));
  const phone = { responder, card, list, input, send, chips, role, clock };
  card.addEventListener("animationend", (event) => { if (event.animationName === "buzz") card.classList.remove("ringing"); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text) reply(phone, text);
  });
  return phone;
}

/** A bubble in time order: in = an SMS the local AWS sent to this phone, out = a reply typed on it. */
function addBubble(phone, { direction, body, at, fresh }) {
  const empty = $(".empty", phone.list);
  if (empty) empty.remove();
  const isPage = direction === "in" && /^(EMERGENCY|EXHAUSTED)/.test(body);
  const bubble = h("li", {
    class: `sms${isPage ? " page" : ""}${fresh ? " new" : ""}`,
    "data-testid": "sms-message", "data-direction": direction, "data-at": at,
  }, body, h("time", {}, clockTime(at)));
  let before = null;
  for (let node = phone.list.lastElementChild; node; node = node.previousElementSibling) {
    if (Number(node.dataset.at) > at) before = node; else break;
  }
  const atBottom = phone.list.scrollHeight - phone.list.scrollTop - phone.list.clientHeight < 40;
  phone.list.insertBefore(bubble, before);
  if (atBottom || fresh) phone.list.scrollTop = phone.list.scrollHeight;
  if (direction === "in") updateChips(phone, body);
  return bubble;
}

/** Suggested replies for the latest page, as a phone's smart replies: one tap sends. */
function updateChips(phone, body) {
  const match = /Reply ACK (\w+)/.exec(body);
  if (!match) return;
  const code = match[1];
  phone.chips.replaceChildren(...[`ACK ${code}`, `RES ${code}`, `ESC ${code}`].map((text) =>
    h("button", { type: "button", class: "chip", "data-testid": "reply-chip", onclick: () => reply(phone, text) }, text)));
}

async function reply(phone, text) {
  phone.input.value = "";
  phone.send.disabled = true;
  const at = Date.now();
  const bubble = addBubble(phone, { direction: "out", body: text, at, fresh: true });
  rememberReply({ phone: phone.responder.phone, body: text, at });
  try {
    const result = await call("POST", "/dev/sms/inbound", { body: { from: phone.responder.phone, body: text } });
    bubble.dataset.delivery = result.ok ? "delivered" : "failed";
    if (!result.ok) bubble.title = errorText(result);
  } catch (error) {
    bubble.dataset.delivery = "failed";
    bubble.title = error.message;
  } finally {
    phone.send.disabled = false;
  }
  // The dev server handles the reply synchronously: the answer SMS and the new events are already there.
  await Promise.all([pollSms(), pollWatched(), pollShopper()]);
}

async function loadRoster() {
  const result = await asAdmin("GET", "/v1/responders");
  if (!result.ok) {
    byTestId("phones").replaceChildren(h("p", { class: "error" }, `Could not load responders: ${errorText(result)}`));
    return;
  }
  const roster = (result.data.responders || []).slice().sort((a, b) => a.id.localeCompare(b.id));
  state.roster = roster;
  const container = byTestId("phones");
  if (!roster.length) {
    container.replaceChildren(h("p", { class: "muted" }, "No responders yet. Start with the demo roster (SEED=1) or PUT /v1/responders/{id}."));
    return;
  }
  if (!state.phones.size) container.replaceChildren();
  for (const responder of roster) {
    if (state.phones.has(responder.id)) continue;
    const phone = makePhone(responder);
    state.phones.set(responder.id, phone);
    container.append(phone.card);
    for (const sent of sentReplies().filter((r) => r.phone === responder.phone)) addBubble(phone, { direction: "out", body: sent.body, at: sent.at });
  }
}

async function pollSms() {
  if (!state.phones.size) return;
  const result = await call("GET", "/dev/sms");
  if (!result.ok) return;
  const first = !state.smsLoaded; // history is shown quietly; later messages make the phone buzz
  state.smsLoaded = true;
  for (const message of result.data.messages || []) {
    if (state.seenSms.has(message.message_id)) continue;
    const responder = responderByPhone(message.to);
    const phone = responder && state.phones.get(responder.id);
    if (!phone) continue; // a number outside the roster: looked at again once the roster has it
    state.seenSms.add(message.message_id);
    addBubble(phone, { direction: "in", body: message.body, at: parseTime(message.sent_at) || Date.now(), fresh: !first });
    if (!first) {
      phone.card.classList.remove("ringing");
      void phone.card.offsetWidth; // restart the animation
      phone.card.classList.add("ringing");
    }
  }
}

/** Each phone's part in the watched incident: paged (tier), acknowledged, resolved. */
function renderPhoneRoles() {
  const events = (state.watched && state.watched.events) || [];
  for (const phone of state.phones.values()) {
    let role = "";
    for (const event of events) {
      const d = event.details || {};
      if (event.type === "paged" && d.responder === phone.responder.id && d.tier) role = `paged · tier ${d.tier}`;
      if (event.actor === `responder:${phone.responder.id}`) {
        if (event.type === "acknowledged") role = "acknowledged";
        if (event.type === "resolved") role = "resolved";
      }
    }
    phone.role.textContent = role;
    phone.role.dataset.status = role === "acknowledged" ? "acknowledged" : role === "resolved" ? "resolved" : role ? "paged" : "";
  }
}

// --- scenario ---------------------------------------------------------------------------------------------------
const SCENARIO_STEPS = [
  ["policy", `Fast demo policy ${DEMO_POLICY} (${DEMO_TIMEOUT_S} s tiers) routed for panic`],
  ["press", "Maya presses the button at the Ferry Building"],
  ["tier1", "Tier 1 is paged and does not answer"],
  ["tier2", `After ${DEMO_TIMEOUT_S} s: escalated to tier 2`],
  ["ack", "A tier-2 responder replies ACK"],
  ["resolve", "They resolve it: RES <code> <note>"],
];

function scenarioStep(id, stepState, text) {
  const li = $(`[data-step="${id}"]`, byTestId("scenario-steps"));
  li.dataset.state = stepState;
  if (text) li.textContent = text;
}

async function waitUntil(predicate, what) {
  const deadline = Date.now() + SCENARIO_STEP_TIMEOUT_MS;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function typeInto(phone, text) {
  phone.input.focus();
  phone.input.value = "";
  for (const ch of text) {
    phone.input.value += ch;
    await sleep(35);
  }
  await sleep(250);
  phone.input.blur();
  await reply(phone, text);
}

async function runScenario() {
  if (state.scenarioRunning) return;
  state.scenarioRunning = true;
  const button = byTestId("scenario-button");
  const panel = byTestId("scenario-status");
  button.disabled = true;
  panel.hidden = false;
  panel.dataset.state = "running";
  byTestId("scenario-result").textContent = "running…";
  byTestId("scenario-steps").replaceChildren(...SCENARIO_STEPS.map(([id, text]) =>
    h("li", { "data-step": id, "data-testid": "scenario-step", "data-state": "pending" }, text)));
  let current = "policy";
  let originalRouting = null;
  let routingRestored = true;
  const restoreRouting = async () => {
    if (routingRestored) return;
    const result = await asAdmin("PUT", "/v1/routing", originalRouting);
    if (!result.ok) throw new Error(`could not restore the routing: ${errorText(result)}`);
    routingRestored = true;
  };
  try {
    scenarioStep("policy", "active");
    const base = await asAdmin("GET", "/v1/escalation-policies/safety-default");
    if (!base.ok) throw new Error("the scenario needs the demo roster's policy safety-default (start with SEED=1)");
    const tiers = base.data.policy.tiers.map((t) => ({ targets: t.targets, timeout_s: DEMO_TIMEOUT_S }));
    let result = await asAdmin("PUT", `/v1/escalation-policies/${DEMO_POLICY}`, { tiers, repeat: 0 });
    if (!result.ok) throw new Error(`could not write ${DEMO_POLICY}: ${errorText(result)}`);
    state.policies.delete(DEMO_POLICY);
    result = await asAdmin("GET", "/v1/routing");
    if (!result.ok) throw new Error(`could not read the routing: ${errorText(result)}`);
    originalRouting = result.data.routing || {};
    routingRestored = false;
    result = await asAdmin("PUT", "/v1/routing", { ...originalRouting, panic: DEMO_POLICY });
    if (!result.ok) throw new Error(`could not route panic to ${DEMO_POLICY}: ${errorText(result)}`);
    scenarioStep("policy", "done");

    current = "press";
    scenarioStep("press", "active");
    shopperSelect.value = SHOPPERS[0].sub;
    kindSelect.value = "panic";
    kindSelect.dispatchEvent(new Event("change"));
    locationSelect.value = "ferry";
    locationSelect.dispatchEvent(new Event("change"));
    byTestId("pin-input").value = "1234";
    await sleep(400);
    const incident = await press();
    // The policy is frozen onto the incident when it opens: the routing can go back at once.
    await restoreRouting();
    if (!incident) throw new Error(byTestId("shopper-error").textContent || "the press failed");
    scenarioStep("press", "done", `Maya pressed the button: ${incident.reference} (code ${incident.code})`);

    const events = () => (state.watched && state.watched.incident.id === incident.id ? state.watched.events : []);
    const status = () => state.watched && state.watched.incident.id === incident.id && state.watched.incident.status;
    const paged = (tier) => events().filter((e) => e.type === "paged" && e.details.tier === tier && !e.details.purpose);

    current = "tier1";
    scenarioStep("tier1", "active");
    const tier1 = await waitUntil(() => paged(1).length && paged(1), "the tier-1 page");
    scenarioStep("tier1", "active", `Tier 1 paged ${tier1.map((e) => e.details.name).join(", ")}, who does not answer…`);
    current = "tier2";
    scenarioStep("tier2", "active");
    await waitUntil(() => events().some((e) => e.type === "escalated" && e.details.tier === 2), "the escalation to tier 2");
    scenarioStep("tier1", "done", `Tier 1 paged ${tier1.map((e) => e.details.name).join(", ")}: no answer in ${DEMO_TIMEOUT_S} s`);
    const tier1Ids = new Set(tier1.map((e) => e.details.responder));
    const tier2 = await waitUntil(() => paged(2).length && paged(2), "the tier-2 page");
    const acker = (tier2.find((e) => !tier1Ids.has(e.details.responder)) || tier2[0]).details;
    scenarioStep("tier2", "done", `After ${DEMO_TIMEOUT_S} s: tier 2 paged ${tier2.map((e) => e.details.name).join(", ")}`);

    current = "ack";
    scenarioStep("ack", "active", `${acker.name} replies ACK ${incident.code}`);
    const phone = state.phones.get(acker.responder);
    if (!phone) throw new Error(`no phone for ${acker.responder}`);
    await sleep(1200);
    await typeInto(phone, `ACK ${incident.code}`);
    await waitUntil(() => status() === "acknowledged", "the acknowledgement");
    scenarioStep("ack", "done", `${acker.name} acknowledged by SMS: timers stopped`);

    current = "resolve";
    scenarioStep("resolve", "active");
    await sleep(1500);
    await typeInto(phone, `RES ${incident.code} shopper safe, waited with her`);
    await waitUntil(() => status() === "resolved", "the resolution");
    scenarioStep("resolve", "done", `${acker.name} resolved it by SMS`);
    panel.dataset.state = "done";
    byTestId("scenario-result").textContent = "done ✓";
  } catch (error) {
    scenarioStep(current, "failed");
    panel.dataset.state = "failed";
    byTestId("scenario-result").textContent = error.message;
    try { await restoreRouting(); } catch (restoreError) { byTestId("scenario-result").textContent += ` · ${restoreError.message}`; }
  } finally {
    state.scenarioRunning = false;
    button.disabled = false;
  }
}

// --- start ------------------------------------------------------------------------------------------------------
async function checkHealth() {
  const pill = byTestId("api-health");
  let ok = false;
  try { ok = (await call("GET", "/api/v1/health")).ok; } catch { ok = false; }
  pill.dataset.state = ok ? "ok" : "down";
  $(".pill-text", pill).textContent = ok ? "API ok" : "API down";
}

function tick() {
  renderCountdown();
  for (const el of document.querySelectorAll(".ago[data-at], .incident-row .age[data-at]")) el.textContent = ago(Number(el.dataset.at));
  const now = clockTime(Date.now()).slice(0, 5);
  for (const phone of state.phones.values()) phone.clock.textContent = now;
}

async function start() {
  initShopperForm();
  byTestId("scenario-button").addEventListener("click", runScenario);
  every(5000, checkHealth);
  await loadRoster().catch((error) => console.error(error));
  every(1000, pollSms);
  every(1000, pollWatched);
  every(1000, pollShopper);
  every(2500, refreshIncidents);
  every(10000, loadRoster);
  setInterval(tick, 250);
  document.body.dataset.ready = "true";
}

start();
