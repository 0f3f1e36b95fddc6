/* Local console for the alert service (local only, never deployed).
 *
 * Uses only the public API, same-origin through the dev server's /api/ proxy, and the dev endpoints:
 *   POST /dev/tokens                a bearer token per role and subject
 *   GET  /dev/sms                   every SMS the local AWS sent (the responders' phones), with its delivery status
 *   POST /dev/sms/inbound           a reply typed on a phone, published to the inbound-sms topic as AWS would
 *   POST /dev/sms/{id}/status       the carrier's delivery receipt (delivered | failed)
 *   GET  /dev/calls, GET /dev/email the failover voice calls and emails responders got
 *   GET  /dev/dispatches            the dispatch provider's alarms, with their location trail
 *   POST /dev/dispatches/{id}/status  what the monitoring centre did (accepted | psap_contacted | closed): the
 *                                   provider's signed webhook goes to the service
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
const OTHER_KIND_LABELS = { missed_check_in: "Missed check-in", test: "Test" }; // opened by the service, not the form
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
// The provider's statuses in the order they happen; a status can only move forward (domain/dispatch.py).
const DISPATCH_ORDER = ["requested", "accepted", "psap_contacted", "closed"];
const DISPATCH_ENDED = ["cancelled", "closed", "failed"];
const PLAYABLE_DISPATCH = [["accepted", "Accepted"], ["psap_contacted", "911 contacted"], ["closed", "Closed"]];

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
const kindLabel = (kind) => (KINDS.find(([k]) => k === kind) || [kind, OTHER_KIND_LABELS[kind] || kind])[1];
const humanize = (text) => String(text || "").replace(/_/g, " ");

// --- HTTP -------------------------------------------------------------------------------------------------------
// A read that has not answered by then is given up (the next poll asks again): every poll loop waits for its own
// previous round, so one stuck read must not freeze a panel. Writes are never cut short.
const READ_TIMEOUT_MS = 10000;

async function call(method, path, { token, body, headers } = {}) {
  const init = { method, headers: { ...(headers || {}) }, cache: "no-store" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const controller = method === "GET" ? new AbortController() : null;
  if (controller) init.signal = controller.signal;
  const timer = controller && setTimeout(() => controller.abort(), READ_TIMEOUT_MS);
  let response;
  let text;
  try {
    response = await fetch(path, init);
    text = await response.text();
  } finally {
    if (timer) clearTimeout(timer);
  }
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
  shopper: null,              // {sub, incident, joined} the incident opened from the shopper panel
  checkIn: null,              // {sub, checkIn, incidentReference} the check-in started from the shopper panel
  watchId: null,              // the incident shown in the timeline
  watched: null,              // {incident, events} of watchId
  policies: new Map(),        // policy id -> policy (for tier timeouts) or null when unknown
  incidents: [],
  smsBubbles: new Map(),      // message id -> its bubble (the delivery status changes)
  dispatches: [],             // GET /dev/dispatches
  dispatchesShown: null,      // what the provider panel shows (redrawn when it changes)
  webhookAnswers: new Map(),  // alarm id -> how the service answered the last webhook played from here
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

/** Runs the polls now (after an action, to show what it changed), each on its own: one failing does not stop the
 * others, and a failure is only logged (the next regular poll tries again). */
function refresh(...tasks) {
  return Promise.all(tasks.map((task) => task().catch((error) => console.debug("refresh failed", error))));
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
  byTestId("new-shopper-button").addEventListener("click", addNewShopper);
  byTestId("cancel-form").addEventListener("submit", (event) => { event.preventDefault(); cancelAlert(); });
  byTestId("share-location-button").addEventListener("click", shareLocation);
  byTestId("check-in-form").addEventListener("submit", (event) => { event.preventDefault(); startCheckIn(); });
  byTestId("check-in-complete").addEventListener("click", completeCheckIn);
  byTestId("check-in-incident-link").addEventListener("click", (event) => { event.preventDefault(); showCheckInIncident(); });
}

/** A shopper with no open alert yet (a second life-safety press by one shopper joins her open alert). */
function addNewShopper() {
  const sub = `s-guest-${Date.now().toString(36)}`;
  shopperSelect.append(h("option", { value: sub }, `New shopper (${sub})`));
  shopperSelect.value = sub;
  return sub;
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
  const duressPin = byTestId("duress-pin-input").value.trim();
  const order = byTestId("order-input").value.trim();
  if (pin) body.cancel_pin = pin;
  if (duressPin) body.duress_pin = duressPin;
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
    // 200 instead of 201: the press joined her open alert (contract 4.2, "pressing again").
    state.shopper = { sub, incident, joined: result.status === 200 };
    byTestId("cancel-pin-input").value = "";
    showError("cancel-error", "");
    renderShopperIncident();
    watch(incident.id);
    refresh(refreshIncidents);
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
    refresh(pollShopper, pollWatched);
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
  refresh(pollWatched);
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
  const message = byTestId("shopper-message");
  message.textContent = incident.shopper_message || "";
  message.dataset.status = incident.status;
  message.hidden = !incident.shopper_message;
  const joined = byTestId("press-joined");
  joined.hidden = !state.shopper.joined;
  joined.textContent = state.shopper.joined
    ? `Your press joined your open alert ${incident.reference} (pressed again ${incident.pressed_again || 1}×): no new alert was opened.`
    : "";
  const open = incident.status === "triggered" || incident.status === "acknowledged";
  byTestId("cancel-form").hidden = !open;
  byTestId("share-location-button").hidden = !open;
}

function setBadge(el, status, text) {
  el.dataset.status = status || "";
  el.textContent = text || humanize(status) || "—";
  el.hidden = !status;
}

// --- check-ins ("check on me in N seconds") ---------------------------------------------------------------------
async function startCheckIn() {
  showError("check-in-error", "");
  const dueInS = Number(byTestId("check-in-due-input").value.trim());
  if (!Number.isInteger(dueInS)) {
    showError("check-in-error", "Due in: a whole number of seconds (5 to 86400).");
    return;
  }
  const body = { due_in_s: dueInS };
  try {
    const location = chosenLocation();
    if (location) body.location = location;
  } catch (error) {
    showError("check-in-error", error.message);
    return;
  }
  const note = byTestId("check-in-note-input").value.trim();
  if (note) body.note = note;
  const sub = shopperSelect.value;
  const button = byTestId("check-in-start");
  button.disabled = true;
  try {
    const result = await api("shopper", sub, "POST", "/v1/check-ins", body, { "Idempotency-Key": newKey() });
    if (!result.ok) {
      showError("check-in-error", `Not started: ${errorText(result)}`);
      return;
    }
    state.checkIn = { sub, checkIn: result.data.check_in, incidentReference: null };
    renderCheckIn();
  } finally {
    button.disabled = false;
  }
}

async function completeCheckIn() {
  if (!state.checkIn) return;
  const { sub, checkIn } = state.checkIn;
  const result = await api("shopper", sub, "POST", `/v1/check-ins/${checkIn.id}/complete`);
  showError("check-in-error", result.ok ? "" : errorText(result));
  if (result.ok && state.checkIn && state.checkIn.checkIn.id === checkIn.id) state.checkIn.checkIn = result.data.check_in;
  renderCheckIn();
  await refresh(pollCheckIn); // a 409 (missed meanwhile) says so; the poll shows the incident it opened
}

async function pollCheckIn() {
  const current = state.checkIn;
  if (!current || current.checkIn.status === "completed" || current.incidentReference) return;
  if (current.checkIn.status === "active") {
    const result = await api("shopper", current.sub, "GET", `/v1/check-ins/${current.checkIn.id}`);
    // An answer read before "I'm OK" was pressed must not put the check-in back to active.
    if (!result.ok || state.checkIn !== current || current.checkIn.status !== "active") return;
    current.checkIn = result.data.check_in;
  }
  if (current.checkIn.incident_id && !current.incidentReference) {
    // Missed: the incident it opened is hers; its reference is what she would be shown.
    const incident = await api("shopper", current.sub, "GET", `/v1/incidents/${current.checkIn.incident_id}`);
    if (incident.ok) current.incidentReference = incident.data.incident.reference;
    refresh(refreshIncidents);
  }
  renderCheckIn();
}

function renderCheckIn() {
  const box = byTestId("check-in-status");
  const current = state.checkIn;
  box.hidden = !current;
  if (!current) return;
  const { checkIn } = current;
  const status = byTestId("check-in-badge");
  setBadge(status, checkIn.status);
  status.dataset.id = checkIn.id;
  byTestId("check-in-due").textContent = checkInDueText(checkIn);
  byTestId("check-in-complete").hidden = checkIn.status !== "active";
  const missed = byTestId("check-in-missed");
  missed.hidden = !checkIn.incident_id;
  const link = byTestId("check-in-incident-link");
  link.textContent = current.incidentReference || checkIn.incident_id || "";
  link.dataset.id = checkIn.incident_id || "";
}

function checkInDueText(checkIn) {
  if (checkIn.status === "completed") return `completed at ${clockTime(parseTime(checkIn.completed_at))}`;
  if (checkIn.status === "missed") return `missed at ${clockTime(parseTime(checkIn.missed_at))}`;
  const remaining = parseTime(checkIn.due_at) - Date.now();
  return remaining > 0 ? `due in ${duration(remaining)}` : "due now…";
}

/** The incident a missed check-in opened: in the shopper panel (it is hers) and on the timeline. */
async function showCheckInIncident() {
  const current = state.checkIn;
  if (!current || !current.checkIn.incident_id) return;
  const result = await api("shopper", current.sub, "GET", `/v1/incidents/${current.checkIn.incident_id}`);
  if (result.ok) {
    state.shopper = { sub: current.sub, incident: result.data.incident, joined: false };
    renderShopperIncident();
  }
  watch(current.checkIn.incident_id);
}

// --- incidents list and the watched incident --------------------------------------------------------------------
function watch(incidentId) {
  if (state.watchId !== incidentId) {
    state.watchId = incidentId;
    state.watched = null;
    renderTimeline(true);
  }
  renderIncidentList();
  refresh(pollWatched);
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
  h("span", {}, kindLabel(incident.kind), incident.duress ? h("span", { class: "badge duress", "data-testid": "row-duress" }, "DURESS") : null),
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
  renderDispatch();
}

// --- the watched incident's emergency dispatch ------------------------------------------------------------------
/** Who may ask for a dispatch from here: the acknowledger, else the responder paged last (a responder the incident
 * covers; contract 4.2). Null until someone was paged. */
function coveringResponder(watched) {
  const { incident, events } = watched;
  if (incident.acknowledged_by) return { id: incident.acknowledged_by, name: incident.acknowledged_by_name || responderName(incident.acknowledged_by) };
  const pages = events.filter((e) => e.type === "paged" && e.details.responder);
  const last = pages[pages.length - 1];
  return last ? { id: last.details.responder, name: last.details.name || responderName(last.details.responder) } : null;
}

function dispatchFacts(dispatch) {
  const requested = parseTime(dispatch.requested_at);
  const after = (iso) => `+${duration(parseTime(iso) - requested)}`;
  const facts = [`${dispatch.provider}`, `requested ${clockTime(requested)}${dispatch.automatic ? " (automatic)" : ""}`];
  if (dispatch.accepted_at) facts.push(`accepted ${after(dispatch.accepted_at)}`);
  if (dispatch.psap_contacted_at) facts.push(`911 contacted ${after(dispatch.psap_contacted_at)}`);
  for (const ended of DISPATCH_ENDED) {
    if (dispatch[`${ended}_at`]) facts.push(`${ended} ${after(dispatch[`${ended}_at`])}`);
  }
  return facts.join(" · ");
}

function renderDispatch() {
  const card = byTestId("dispatch-card");
  const button = byTestId("dispatch-button");
  const watched = state.watched;
  card.hidden = !watched;
  if (!watched) {
    // Nothing for the incident shown before: the button asks for nobody until the new one is read.
    button.disabled = true;
    button.dataset.responder = "";
    card.dataset.incident = card.dataset.reference = "";
    return;
  }
  const dispatch = watched.incident.dispatch;
  card.dataset.status = dispatch ? dispatch.status : "";
  card.dataset.incident = watched.incident.id;
  card.dataset.reference = watched.incident.reference;
  setBadge(byTestId("dispatch-status"), dispatch ? dispatch.status : "none", dispatch ? null : "none");
  byTestId("dispatch-status").hidden = false;
  byTestId("dispatch-facts").textContent = dispatch ? dispatchFacts(dispatch) : "";
  const covering = coveringResponder(watched);
  button.dataset.responder = covering ? covering.id : "";
  if (!button.dataset.busy) button.disabled = !covering;
  button.textContent = covering ? `Request dispatch as ${covering.name}` : "Request dispatch (once a responder is paged)";
}

async function requestDispatch() {
  const watched = state.watched;
  const button = byTestId("dispatch-button");
  const responder = button.dataset.responder;
  if (!watched || !responder) return;
  button.dataset.busy = "1";
  button.disabled = true;
  try {
    const result = await api("responder", responder, "POST", `/v1/incidents/${watched.incident.id}/dispatch`,
      { reason: "requested from the local console" });
    // 409 (one is already active, or the incident is closed) and 422 (no location) say why in the API's words.
    showError("dispatch-error", result.ok ? "" : errorText(result));
  } catch (error) {
    showError("dispatch-error", error.message);
  } finally {
    delete button.dataset.busy;
    button.disabled = false;
    await refresh(pollWatched, pollDispatches, pollShopper);
  }
}

const SKIP_REASONS = { inactive: "inactive", deleted: "no longer on the roster", opted_out: "opted out (STOP)" };
const NOTICE_PURPOSES = {
  cancelled: "Cancellation notice", duress: "DURESS notice", reminder: "Reminder", pressed: "Pressed-again notice",
  shopper: "Status SMS", dispatch: "Dispatch-failed notice", exhausted: "Exhausted notice",
};

/** Why an escalation with trigger "manual" happened: the API records a responder's ESC (SMS or API) and the shopper
 * pressing again alike. A press-again of a triggered incident just before it (10 s) is taken as the cause. */
function manualEscalationCause(event, events) {
  const earlier = events.filter((e) => e.seq < event.seq
    && (e.type === "pressed_again" || (e.type === "sms_received" && e.details.command === "escalate")));
  const cause = earlier[earlier.length - 1];
  const pressed = cause && cause.type === "pressed_again" && cause.details.status === "triggered"
    && parseTime(event.at) - parseTime(cause.at) < 10000;
  return pressed ? "the shopper pressed again" : "a responder asked to escalate (ESC)";
}

/** What a timeline event says, for people: [headline, detail]. `events` is the whole timeline, for context. */
function describe(event, events = []) {
  const d = event.details || {};
  const who = (actor) => (actor || "").startsWith("responder:") ? responderName(actor) : actor || "the service";
  const person = (id) => (id === "shopper" ? "the shopper" : responderName(id) || id);
  const page = () => (d.purpose ? `${(NOTICE_PURPOSES[d.purpose] || humanize(d.purpose)).toLowerCase()} to ${person(d.responder)}`
    : `page to ${person(d.responder)} · tier ${d.tier}`);
  switch (event.type) {
    case "created":
      return [`Alert raised: ${kindLabel(d.kind)} (${d.severity})`, `by ${who(event.actor)} · routed to policy ${d.policy}`];
    case "location_updated":
      return ["Location updated", [d.lat, d.lng].filter((v) => v !== undefined).join(", ")];
    case "pressed_again":
      return [`Shopper pressed again (${d.count}×)`, `while ${d.status}${d.location ? ` · at ${d.location.lat}, ${d.location.lng}` : ""}`
        + (d.status === "triggered" ? " · escalating now" : "")];
    case "paged":
      if (d.purpose) return [`${NOTICE_PURPOSES[d.purpose] || humanize(d.purpose)} to ${d.name || d.responder}`, `SMS to ${prettyPhone(d.to)}`];
      return [`Paged ${d.name || d.responder} · tier ${d.tier}`, `SMS to ${prettyPhone(d.to)}`];
    case "page_skipped":
      return [`Skipped ${person(d.responder)}${d.tier ? ` · tier ${d.tier}` : ""}`, `not paged: ${SKIP_REASONS[d.reason] || humanize(d.reason)}`];
    case "page_delivered":
      return [`Delivered: ${page()}`, `carrier receipt${d.to ? ` · ${prettyPhone(d.to)}` : ""}`];
    case "page_failed":
      return [`Not delivered: ${page()}`, d.error ? `send failed: ${d.error}` : `carrier reported failure${d.to ? ` · ${prettyPhone(d.to)}` : ""}`];
    case "page_failover":
      return [`Failover ${d.channel === "voice" ? "call" : d.channel} to ${person(d.responder)}`,
        `${d.reason || "page not delivered"}${d.to ? ` · ${d.channel === "voice" ? prettyPhone(d.to) : d.to}` : ""}`];
    case "notice_sent":
      return [`${NOTICE_PURPOSES[d.purpose] || humanize(d.purpose || "notice")} to ${person(d.responder)}`, d.to ? prettyPhone(d.to) : ""];
    case "duress_signalled":
      return ["DURESS: cancelled with the duress PIN", `her phone shows “cancelled”; the alert stays open (was ${d.previous_status}${d.reopened ? ", reopened" : ""}) · sev1`];
    case "dispatch_requested":
      return [`Emergency dispatch requested${d.automatic ? " (automatic)" : ""}`, `by ${who(event.actor)} · provider ${d.provider}${d.reason ? ` · “${d.reason}”` : ""}`];
    case "dispatch_updated":
      return [`Dispatch ${d.status === "psap_contacted" ? "911 contacted" : humanize(d.status)}`, `by ${who(event.actor)}`];
    case "dispatch_failed":
      return ["Dispatch failed", d.error || "the provider could not be reached"];
    case "ack_reminded":
      return [`Reminder to ${person(d.responder)}`, "acknowledged but not resolved in time"];
    case "ack_expired":
      return [`Acknowledgement by ${person(d.acknowledged_by)} expired`, `back to the team${d.resumes_at_step !== undefined ? ` · resumes at step ${d.resumes_at_step}` : ""}`];
    case "escalated":
      return [`Escalated to tier ${d.tier}`, d.trigger === "manual" ? manualEscalationCause(event, events) : `nobody acknowledged in time${d.round ? ` · round ${d.round + 1}` : ""}`];
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
    byTestId("timeline-duress").hidden = true;
    renderDispatch();
    list.dataset.count = "0";
    renderCountdown();
    return;
  }
  byTestId("timeline-reference").textContent = watched.incident.reference;
  setBadge(statusBadge, watched.incident.status);
  byTestId("timeline-duress").hidden = !watched.incident.duress;
  const created = parseTime(watched.incident.created_at);
  const shown = Number(list.dataset.count || 0);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  for (const event of watched.events.slice(shown)) {
    const [what, detail] = describe(event, watched.events);
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
  const failover = h("ul", { class: "failover", "data-testid": "failover-list", "aria-label": `Calls and emails to ${responder.name}` });
  const card = h("article", { class: "phone", "data-testid": `phone-${responder.id}`, "data-responder": responder.id, "data-phone": responder.phone },
    h("header", { class: "phone-owner" },
      h("span", { class: "avatar" }, initials(responder.name)),
      h("div", { class: "who" }, h("strong", {}, responder.name), h("small", {}, prettyPhone(responder.phone))),
      role),
    h("div", { class: "device" },
      h("div", { class: "statusbar" }, clock, h("span", { class: "notch" }), h("span", {}, "5G ▮▮▮")),
      h("div", { class: "convo-head" }, h("span", { class: "sender" }, "!"), h("div", {}, "T&S Alerts", h("small", {}, prettyPhone(SERVICE_NUMBER)))),
      list, chips, form),
    failover);
  const phone = { responder, card, list, input, send, chips, role, clock, failover, failoverShown: "" };
  card.addEventListener("animationend", (event) => { if (event.animationName === "buzz") card.classList.remove("ringing"); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text) reply(phone, text);
  });
  return phone;
}

/** A bubble in time order: in = an SMS the local AWS sent to this phone (with its delivery status, when
 * `messageId` is given), out = a reply typed on it. */
function addBubble(phone, { direction, body, at, fresh, messageId, status }) {
  const empty = $(".empty", phone.list);
  if (empty) empty.remove();
  const isPage = direction === "in" && /^(EMERGENCY|EXHAUSTED|DURESS)/.test(body);
  const footer = messageId ? receiptLine(messageId, at) : h("time", {}, clockTime(at));
  const bubble = h("li", {
    class: `sms${isPage ? " page" : ""}${fresh ? " new" : ""}`,
    "data-testid": "sms-message", "data-direction": direction, "data-at": at, "data-message-id": messageId,
  }, body, footer);
  if (messageId) {
    state.smsBubbles.set(messageId, bubble);
    showDelivery(bubble, status || "sent");
  }
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

/** The bubble's footer: when it was sent, the carrier's status, and buttons that play the carrier's receipt. */
function receiptLine(messageId, at) {
  const mark = (status, label) => h("button", {
    type: "button", class: `mark-button ${status}`, "data-testid": `mark-${status}`, title: `Play the carrier's receipt: ${status}`,
    onclick: () => markSms(messageId, status),
  }, label);
  return h("div", { class: "receipt" },
    h("time", {}, clockTime(at)),
    h("span", { class: "delivery", "data-testid": "sms-delivery" }),
    mark("delivered", "✓ delivered"), mark("failed", "✕ failed"));
}

const DELIVERY_LABELS = { sent: "sent", delivered: "✓✓ delivered", failed: "✕ not delivered" };

function showDelivery(bubble, status) {
  bubble.dataset.status = status;
  $(".delivery", bubble).textContent = DELIVERY_LABELS[status] || status;
  // A receipt is final (the first one counts): the buttons only while the SMS is merely sent.
  for (const button of bubble.querySelectorAll(".mark-button")) button.hidden = status !== "sent";
}

/** POST /dev/sms/{id}/status: the carrier's receipt, as SNS delivery status logging would deliver it. */
async function markSms(messageId, status) {
  const bubble = state.smsBubbles.get(messageId);
  const result = await call("POST", `/dev/sms/${encodeURIComponent(messageId)}/status`, { body: { status } });
  if (!result.ok) {
    if (bubble) bubble.title = errorText(result);
    return;
  }
  if (bubble) showDelivery(bubble, status);
  // A failed page fails over at once (a call, an email): show what it set off.
  await refresh(pollWatched, pollFailover);
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
  await refresh(pollSms, pollWatched, pollShopper);
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
    if (state.phones.has(responder.id)) {
      state.phones.get(responder.id).responder = responder; // failover channels (voice, email) may have changed
      continue;
    }
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
    if (state.seenSms.has(message.message_id)) {
      const bubble = state.smsBubbles.get(message.message_id);
      if (bubble && message.status && bubble.dataset.status !== message.status) showDelivery(bubble, message.status);
      continue;
    }
    const responder = responderByPhone(message.to);
    const phone = responder && state.phones.get(responder.id);
    if (!phone) continue; // a number outside the roster: looked at again once the roster has it
    state.seenSms.add(message.message_id);
    addBubble(phone, { direction: "in", body: message.body, at: parseTime(message.sent_at) || Date.now(), fresh: !first,
      messageId: message.message_id, status: message.status });
    if (!first) {
      phone.card.classList.remove("ringing");
      void phone.card.offsetWidth; // restart the animation
      phone.card.classList.add("ringing");
    }
  }
}

/** Failover: the voice calls (GET /dev/calls) and emails (GET /dev/email) each responder got, under their phone:
 * per channel, how many and the latest one. */
async function pollFailover() {
  if (!state.phones.size) return;
  const [calls, emails] = await Promise.all([call("GET", "/dev/calls"), call("GET", "/dev/email")]);
  if (!calls.ok || !emails.ok) return;
  for (const phone of state.phones.values()) {
    const { responder } = phone;
    const callsTo = (calls.data.calls || []).filter((c) => c.to === responder.phone);
    const emailsTo = (emails.data.emails || []).filter((e) => responder.email && (e.to || []).includes(responder.email));
    const signature = [...callsTo.map((c) => c.call_id), ...emailsTo.map((e) => e.id)].join(",");
    if (signature === phone.failoverShown) continue;
    phone.failoverShown = signature;
    const items = [];
    if (callsTo.length) items.push(failoverCall(callsTo[callsTo.length - 1], callsTo.length));
    if (emailsTo.length) items.push(failoverEmail(emailsTo[emailsTo.length - 1], emailsTo.length, responder.email));
    phone.failover.replaceChildren(...items);
  }
}

const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

function failoverCall(latest, count) {
  return h("li", { "data-testid": "failover-call", "data-id": latest.call_id, "data-count": count, title: latest.text },
    h("span", { class: "icon", "aria-hidden": "true" }, "☎"),
    h("div", {}, h("strong", {}, `${plural(count, "voice call")} · latest ${clockTime(parseTime(latest.at))}`),
      h("small", { "data-testid": "failover-text" }, `reads: ${latest.text}`)));
}

function failoverEmail(latest, count, address) {
  return h("li", { "data-testid": "failover-email", "data-id": latest.id, "data-count": count, title: latest.body },
    h("span", { class: "icon", "aria-hidden": "true" }, "✉"),
    h("div", {}, h("strong", {}, `${plural(count, "email")} to ${address}`),
      h("small", { "data-testid": "failover-text" }, `${latest.subject}: ${latest.body}`)));
}

/** Each phone's part in the watched incident: paged (tier), acknowledged, resolved. */
function renderPhoneRoles() {
  const events = (state.watched && state.watched.events) || [];
  for (const phone of state.phones.values()) {
    let role = "";
    for (const event of events) {
      const d = event.details || {};
      if (event.type === "paged" && d.responder === phone.responder.id && d.tier && !d.purpose) role = `paged · tier ${d.tier}`;
      if (event.actor === `responder:${phone.responder.id}`) {
        if (event.type === "acknowledged") role = "acknowledged";
        if (event.type === "resolved") role = "resolved";
      }
    }
    phone.role.textContent = role;
    phone.role.dataset.status = role === "acknowledged" ? "acknowledged" : role === "resolved" ? "resolved" : role ? "paged" : "";
  }
}

// --- the dispatch provider (played by the dev server) -----------------------------------------------------------
async function pollDispatches() {
  const result = await call("GET", "/dev/dispatches");
  if (!result.ok) return;
  const dispatches = result.data.dispatches || [];
  const signature = JSON.stringify(dispatches.map((d) => [d.id, d.status, d.locations.length]));
  if (signature === state.dispatchesShown) return;
  state.dispatchesShown = signature;
  state.dispatches = dispatches;
  renderProvider();
}

function renderProvider() {
  const list = byTestId("provider-list");
  if (!state.dispatches.length) {
    list.replaceChildren(h("li", { class: "muted" }, "No dispatch yet: request one on a watched incident."));
    return;
  }
  const newestFirst = state.dispatches.slice().reverse();
  list.replaceChildren(...newestFirst.map(alarmItem));
}

function alarmItem(alarm) {
  const rank = DISPATCH_ORDER.indexOf(alarm.status);
  const ended = DISPATCH_ENDED.includes(alarm.status);
  const buttons = PLAYABLE_DISPATCH.map(([status, label]) => h("button", {
    type: "button", class: "btn btn-small btn-quiet", "data-testid": `play-${status}`,
    // Forward only, as the service takes them. The current status may be played again (a fresh webhook, say after the
    // service refused one); an earlier one, or anything once the alarm was cancelled or closed, is moot.
    disabled: DISPATCH_ORDER.indexOf(status) < rank || (ended && status !== alarm.status),
    onclick: (event) => playDispatch(alarm, status, event.currentTarget),
  }, label));
  const trail = alarm.locations.map((l) => h("li", { "data-testid": "alarm-location" }, `${l.lat}, ${l.lng}${l.accuracy ? ` ±${l.accuracy} m` : ""}`));
  return h("li", { class: "alarm", "data-testid": "provider-alarm", "data-id": alarm.id, "data-reference": alarm.reference, "data-status": alarm.status },
    h("div", { class: "alarm-head" },
      h("span", { class: "ref" }, alarm.reference),
      h("span", { class: "kind" }, `${kindLabel(alarm.kind)} · alarm ${alarm.id.slice(0, 12)}… · ${clockTime(parseTime(alarm.created_at))}`),
      h("span", { class: "badge", "data-testid": "alarm-status", "data-status": alarm.status }, alarm.status === "psap_contacted" ? "911 contacted" : humanize(alarm.status)),
      alarm.duress ? h("span", { class: "badge duress" }, "DURESS") : null),
    h("ol", { class: "alarm-trail", "data-testid": "alarm-trail", title: "location trail, oldest first" }, trail),
    h("div", { class: "alarm-actions" }, ...buttons, h("span", { class: "webhook", "data-testid": "alarm-webhook" }, state.webhookAnswers.get(alarm.id) || "")));
}

/** POST /dev/dispatches/{id}/status: the monitoring centre's step; the provider's signed webhook goes to the service. */
async function playDispatch(alarm, status, button) {
  showError("provider-error", "");
  if (button) button.disabled = true;
  const result = await call("POST", `/dev/dispatches/${encodeURIComponent(alarm.id)}/status`, { body: { status } });
  if (!result.ok) {
    showError("provider-error", `${alarm.reference}: ${errorText(result)}`);
  } else {
    const answer = result.data.webhook_status || result.data.webhook_error;
    state.webhookAnswers.set(alarm.id, `${humanize(status)}: webhook → ${answer}`);
    if (result.data.webhook_status !== 200) showError("provider-error", `${alarm.reference}: the service answered the webhook with ${answer}`);
  }
  state.dispatchesShown = null;
  await refresh(pollDispatches, pollWatched, pollShopper);
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
    // A shopper of its own each run: a second panic by the same shopper would join her open incident (contract 4.2).
    const scenarioShopper = `${SHOPPERS[0].sub}-${Date.now().toString(36)}`;
    shopperSelect.append(h("option", { value: scenarioShopper }, `${SHOPPERS[0].name} (scenario)`));
    shopperSelect.value = scenarioShopper;
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
  if (state.checkIn) byTestId("check-in-due").textContent = checkInDueText(state.checkIn.checkIn);
}

async function start() {
  initShopperForm();
  byTestId("scenario-button").addEventListener("click", runScenario);
  byTestId("dispatch-button").addEventListener("click", requestDispatch);
  every(5000, checkHealth);
  await loadRoster().catch((error) => console.error(error));
  every(1000, pollSms);
  every(1000, pollWatched);
  every(1000, pollShopper);
  every(1000, pollCheckIn);
  every(1500, pollDispatches);
  every(2000, pollFailover);
  every(2500, refreshIncidents);
  every(10000, loadRoster);
  setInterval(tick, 250);
  document.body.dataset.ready = "true";
}

start();
