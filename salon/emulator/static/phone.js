// The phone page of the WhatsApp emulator: the client's side of one conversation.
// Reads GET /_emulator/thread about once a second; writes through the admin API.
(() => {
  "use strict";

  const POLL_MS = 1000;
  const CLIENTS_EVERY = 5; // refresh the known clients every N polls
  const THREAD_LIMIT = 300;

  const params = new URLSearchParams(window.location.search);
  const TRUE = new Set(["1", "true", "yes", "on"]);

  // The client's time zone by default: from the country of the number (calling code) or
  // of the business-scoped user id (its ISO prefix).
  const ZONES = [
    ["33", "FR.", "Europe/Paris"],
    ["44", "GB.", "Europe/London"],
    ["39", "IT.", "Europe/Rome"],
  ];
  function defaultZone(client) {
    const id = String(client || "").replace(/^\+/, "");
    for (const [code, prefix, zone] of ZONES) {
      if (id.startsWith(prefix) || (/^\d/.test(id) && id.startsWith(code))) return zone;
    }
    return "UTC";
  }
  const isBsuid = (id) => /^[A-Z]{2}\.[0-9A-Za-z.]+$/.test(id);

  const initialClient = (params.get("client") || "33600000001").trim();
  const state = {
    client: initialClient,
    name: params.has("name") ? params.get("name") : "Claire Laurent",
    followup: params.get("followup") || "",
    bsuidOnly: TRUE.has((params.get("username") || "").toLowerCase()),
    zone: params.get("tz") || defaultZone(initialClient),
    zoneChosen: params.has("tz"),
    known: null, // the client as the emulator knows them (thread view)
    rendered: "",
    openLists: new Set(),
    errors: { poll: "", action: "" },
    actionTimer: 0,
    polls: 0,
  };

  const el = (id) => document.getElementById(id);
  const ui = {
    identity: el("identity"),
    name: el("client-name"),
    number: el("client-number"),
    known: el("known-clients"),
    bsuidOnly: el("bsuid-only"),
    ids: el("client-ids"),
    changeBsuid: el("change-bsuid"),
    newNumber: el("new-number"),
    changeNumber: el("change-number"),
    identityResult: el("identity-result"),
    callAnswered: el("call-answered"),
    placeCall: el("place-call"),
    echoForm: el("echo-form"),
    echoText: el("echo-text"),
    echoSend: el("echo-send"),
    zone: el("time-zone"),
    clock: el("clock"),
    offset: el("clock-offset"),
    followupGroup: el("followup-group"),
    followup: el("followup"),
    followupResult: el("followup-result"),
    businessName: el("business-name"),
    businessSub: el("business-sub"),
    banner: el("window-banner"),
    error: el("error"),
    thread: el("thread"),
    composer: el("composer"),
    message: el("message"),
    send: el("send"),
  };

  // ------------------------------------------------------------------ formatting
  // Every time is shown in the client's time zone (state.zone), as their phone would.
  const dateOf = (iso) => new Date(iso);
  const inZone = (options) => ({ ...options, timeZone: state.zone });
  const hhmm = (iso) =>
    dateOf(iso).toLocaleTimeString("en-GB", inZone({ hour: "2-digit", minute: "2-digit" }));
  const dayKey = (iso) =>
    dateOf(iso).toLocaleDateString("en-CA", inZone({ year: "numeric", month: "2-digit", day: "2-digit" }));
  const dayLabel = (iso) =>
    dateOf(iso).toLocaleDateString("en-GB", inZone({
      weekday: "long", day: "numeric", month: "long", year: "numeric",
    }));
  const moment = (iso) =>
    dateOf(iso).toLocaleString("en-GB", inZone({
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short",
    }));
  const clockText = (iso) =>
    dateOf(iso).toLocaleString("en-GB", inZone({
      weekday: "short", day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    }));

  function duration(seconds) {
    const total = Math.round(Math.abs(seconds) / 60);
    const days = Math.floor(total / 1440);
    const hours = Math.floor((total % 1440) / 60);
    const minutes = total % 60;
    const parts = [];
    if (days) parts.push(`${days} d`);
    if (hours) parts.push(`${hours} h`);
    if (minutes || !parts.length) parts.push(`${minutes} min`);
    return parts.join(" ");
  }

  // ------------------------------------------------------------------ errors
  function renderErrors() {
    const text = state.errors.action || state.errors.poll;
    ui.error.textContent = text;
    ui.error.hidden = !text;
  }

  function actionError(message) {
    state.errors.action = message;
    window.clearTimeout(state.actionTimer);
    if (message) {
      state.actionTimer = window.setTimeout(() => actionError(""), 12000);
    }
    renderErrors();
  }

  function pollError(message) {
    if (state.errors.poll !== message) {
      state.errors.poll = message;
      renderErrors();
    }
  }

  // ------------------------------------------------------------------ HTTP
  async function call(method, url, body) {
    const init = { method, cache: "no-store", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new Error(`cannot reach ${url} (${err.message || err})`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_err) {
      data = null;
    }
    if (!response.ok) {
      let detail = response.statusText || "error";
      if (data && typeof data.error === "string") detail = data.error;
      else if (data && data.error && data.error.message) detail = data.error.message;
      throw new Error(`${detail} (HTTP ${response.status})`);
    }
    return data;
  }

  async function act(label, fn) {
    try {
      const result = await fn();
      actionError("");
      await refresh();
      return result;
    } catch (err) {
      actionError(`${label}: ${err.message || err}`);
      return null;
    }
  }

  // ------------------------------------------------------------------ rendering
  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  const TICKS = {
    accepted: ["…", "Pending"],
    sent: ["✓", "Sent"],
    delivered: ["✓✓", "Delivered"],
    read: ["✓✓", "Read"],
    failed: ["!", "Failed"],
    rejected: ["!", "Not sent"],
  };

  function ticks(status) {
    const [glyph, label] = TICKS[status] || ["", status];
    const span = node("span", "ticks", glyph);
    span.dataset.status = status;
    span.setAttribute("role", "img");
    span.setAttribute("aria-label", label);
    span.title = label;
    return span;
  }

  function meta(message) {
    const line = node("div", "bubble__meta");
    const time = node("time", "", hhmm(message.at));
    time.dateTime = message.at;
    line.append(time);
    if (message.status) line.append(ticks(message.status));
    return line;
  }

  function systemNote(message) {
    const item = node("li", "system", message.text);
    item.dataset.wamid = message.wamid || "";
    item.dataset.type = "system";
    item.dataset.systemType = message.system_type || "";
    item.setAttribute("role", "note");
    const time = node("time", "", ` · ${hhmm(message.at)}`);
    time.dateTime = message.at;
    item.append(time);
    return item;
  }

  const MEDIA_LABEL = {
    image: "Photo", video: "Video", audio: "Voice message", document: "Document",
    sticker: "Sticker", location: "Location", contacts: "Contact", order: "Order",
    reaction: "Reaction", unsupported: "Unsupported message",
  };

  function clientBubble(message) {
    const item = node("li", "msg msg--client");
    item.dataset.wamid = message.wamid || "";
    item.dataset.direction = "in";
    item.dataset.type = message.type;
    const bubble = node("div", "bubble");
    if (message.type === "call") {
      bubble.append(node("p", "bubble__call", `☎ ${message.text}`));
      bubble.append(meta(message));
      item.append(bubble);
      return item;
    }
    if (message.tapped) {
      bubble.append(node("span", "bubble__label", "Reply"));
    } else if (MEDIA_LABEL[message.type]) {
      const label = message.media && message.media.filename
        ? `${MEDIA_LABEL[message.type]} · ${message.media.filename}`
        : MEDIA_LABEL[message.type];
      bubble.append(node("p", "bubble__media", label));
    }
    if (message.text) bubble.append(node("p", "bubble__body", message.text));
    bubble.append(meta(message));
    item.append(bubble);
    return item;
  }

  function optionButton(message, option, row) {
    const button = node("button", row ? "option option--row" : "option");
    button.type = "button";
    if (row) {
      button.append(node("span", "", option.title));
      if (option.description) button.append(node("span", "option__desc", option.description));
    } else {
      button.textContent = option.title;
    }
    const tappable = message.wamid && !["failed", "rejected"].includes(message.status);
    button.disabled = !tappable;
    button.dataset.optionId = String(option.id);
    button.dataset.kind = option.kind || "";
    button.addEventListener("click", () =>
      option.kind === "share_contact" ? shareContact(message, button) : tap(message, option, button),
    );
    return button;
  }

  function businessBubble(message) {
    const item = node("li", "msg msg--business");
    item.dataset.wamid = message.wamid || "";
    item.dataset.direction = "out";
    item.dataset.type = message.type;
    item.dataset.status = message.status;
    item.dataset.source = message.source || "cloud_api";
    if (message.template) item.dataset.template = message.template;
    const bubble = node("div", "bubble");
    if (message.source === "business_app") {
      bubble.append(node("span", "bubble__label", "Advisor · WhatsApp Business app"));
    }
    if (message.template) {
      const lang = message.language ? ` · ${message.language}` : "";
      const label = node("span", "bubble__label", "Template");
      label.append(node("span", "bubble__name", ` · ${message.template}${lang}`));
      bubble.append(label);
    } else if (MEDIA_LABEL[message.type] && message.type !== "reaction") {
      bubble.append(node("p", "bubble__media", MEDIA_LABEL[message.type]));
    }
    if (message.header) bubble.append(node("p", "bubble__header", message.header));
    if (message.body) bubble.append(node("p", "bubble__body", message.body));
    if (message.footer) bubble.append(node("p", "bubble__footer", message.footer));
    bubble.append(meta(message));
    if (message.status === "failed" || message.status === "rejected") {
      const code = message.error_code ? ` · error ${message.error_code}` : "";
      const what = message.status === "failed" ? "Not delivered" : "Refused by the API";
      const failure = node("p", "failure", `${what}${code}`);
      if (message.error_details) failure.title = message.error_details;
      bubble.append(failure);
    }
    item.append(bubble);

    const options = message.options || [];
    const titles = new Set(options.map((o) => o.title));
    const links = (message.buttons || []).filter((title) => !titles.has(title));
    if (options.length || links.length) {
      const box = node("div", "options");
      if (message.interactive_type === "list") {
        const key = message.wamid || "";
        const open = state.openLists.has(key);
        const toggle = node("button", "option", `☰ ${message.list_button || "Options"}`);
        toggle.type = "button";
        toggle.setAttribute("aria-expanded", String(open));
        toggle.addEventListener("click", () => {
          if (state.openLists.has(key)) state.openLists.delete(key);
          else state.openLists.add(key);
          state.rendered = "";
          refresh();
        });
        box.append(toggle);
        if (open) options.forEach((o) => box.append(optionButton(message, o, true)));
      } else {
        options.forEach((o) => box.append(optionButton(message, o, false)));
      }
      links.forEach((title) => box.append(node("span", "option option--link", `↗ ${title}`)));
      item.append(box);
    }
    return item;
  }

  function renderThread(data) {
    const messages = data.messages || [];
    const key = JSON.stringify([state.client, state.zone, [...state.openLists], messages]);
    if (key === state.rendered) return;
    const list = ui.thread;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const first = state.rendered === "";
    state.rendered = key;
    const items = [];
    let day = "";
    for (const message of messages) {
      if (dayKey(message.at) !== day) {
        day = dayKey(message.at);
        const chip = node("li", "day", dayLabel(message.at));
        chip.setAttribute("role", "separator");
        items.push(chip);
      }
      if (message.type === "system") items.push(systemNote(message));
      else items.push(message.direction === "in" ? clientBubble(message) : businessBubble(message));
    }
    if (!messages.length) {
      items.push(node("li", "day", "No messages yet. Write to the maison below."));
    }
    list.replaceChildren(...items);
    if (first || atBottom) list.scrollTop = list.scrollHeight;
  }

  function renderWindow(data) {
    const w = data.window || {};
    const banner = ui.banner;
    if (w.open) {
      const left = (dateOf(w.closes_at) - dateOf(data.now)) / 1000;
      banner.className = "banner banner--open";
      banner.textContent =
        `24-hour window open · closes ${moment(w.closes_at)} (in ${duration(left)})`;
    } else if (w.closes_at) {
      banner.className = "banner banner--closed";
      banner.textContent =
        `Window closed since ${moment(w.closes_at)} · only templates can be sent`;
    } else {
      banner.className = "banner banner--none";
      banner.textContent = "No message from this client yet · only templates can be sent";
    }
    banner.dataset.window = w.open ? "open" : "closed";
  }

  function renderClient(data) {
    const c = data.client;
    state.known = c || null;
    if (!c) {
      ui.ids.textContent = "Not known to the emulator yet.";
      return;
    }
    const parts = [];
    if (c.wa_id) parts.push(`Number +${c.wa_id}${c.bsuid_only ? " (hidden from the maison)" : ""}`);
    if (c.user_id) parts.push(`BSUID ${c.user_id}`);
    if (c.parent_user_id) parts.push(`Parent ${c.parent_user_id}`);
    ui.ids.textContent = parts.join(" · ");
    ui.ids.dataset.userId = c.user_id || "";
    ui.ids.dataset.waId = c.wa_id || "";
  }

  function renderClock(data) {
    ui.clock.textContent = clockText(data.now);
    ui.clock.dateTime = data.now;
    const offset = data.offset_seconds || 0;
    ui.offset.textContent = Math.abs(offset) < 1
      ? "Running on the real clock."
      : `${duration(offset)} ${offset > 0 ? "ahead of" : "behind"} the real clock.`;
  }

  // ------------------------------------------------------------------ polling
  let refreshing = null;

  function refresh() {
    if (!refreshing) {
      refreshing = load().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  async function load() {
    const url = `/_emulator/thread?client=${encodeURIComponent(state.client)}&limit=${THREAD_LIMIT}`;
    try {
      const data = await call("GET", url);
      pollError("");
      renderClock(data);
      renderClient(data);
      renderWindow(data);
      renderThread(data);
      if (data.business && data.business.name) ui.businessName.textContent = data.business.name;
      if (data.business && data.business.display_phone_number) {
        ui.businessSub.textContent = `Business account · +${data.business.display_phone_number}`;
      }
      document.body.dataset.ready = "1";
    } catch (err) {
      pollError(`The emulator did not answer: ${err.message || err}. Retrying…`);
    }
  }

  async function loadClients() {
    try {
      const clients = await call("GET", "/_emulator/conversations");
      const options = clients
        .filter((c) => c.wa_id || c.user_id)
        .map((c) => {
          const option = document.createElement("option");
          option.value = c.wa_id || c.user_id;
          option.label = c.name || option.value;
          return option;
        });
      ui.known.replaceChildren(...options);
    } catch (_err) {
      // the thread poll reports connection problems
    }
  }

  async function loop() {
    if (state.polls % CLIENTS_EVERY === 0) loadClients();
    state.polls += 1;
    await refresh();
    window.setTimeout(loop, POLL_MS);
  }

  // ------------------------------------------------------------------ actions
  // Who writes: a number in "from", a BSUID in "user_id"; a username-only client also
  // says bsuid_only (the webhook then carries no phone number).
  function sender() {
    const body = isBsuid(state.client) ? { user_id: state.client } : { from: state.client };
    if (state.bsuidOnly) body.bsuid_only = true;
    if (state.name && state.name.trim()) body.name = state.name.trim();
    return body;
  }

  async function shareContact(message, button) {
    button.disabled = true;
    await act("Sharing your contact info failed", () =>
      call("POST", "/_emulator/share_contact", { client: state.client, reply_to: message.wamid }),
    );
    button.disabled = false;
  }

  async function changeIdentity(body, button) {
    button.disabled = true;
    ui.identityResult.textContent = "";
    const result = await act("The identity change failed", () =>
      call("POST", "/_emulator/identity_change", { client: state.client, ...body }),
    );
    button.disabled = false;
    if (!result) return;
    const c = result.client;
    // follow the client to the id this page uses
    const next = isBsuid(state.client) ? c.user_id : c.wa_id || c.user_id;
    if (next && next !== state.client) {
      state.client = next;
      ui.number.value = next;
      updateUrl();
      state.rendered = "";
      await refresh();
    }
    ui.identityResult.textContent = result.type === "user_changed_number"
      ? `Number changed to +${c.wa_id}; new BSUID ${c.user_id}.`
      : `New BSUID ${c.user_id}.`;
  }

  async function placeCall() {
    ui.placeCall.disabled = true;
    await act("The call did not go through", () =>
      call("POST", "/_emulator/call", { client: state.client, answered: ui.callAnswered.checked }),
    );
    ui.placeCall.disabled = false;
  }

  function setZone(zone, chosen) {
    state.zone = zone;
    state.zoneChosen = chosen;
    if (![...ui.zone.options].some((o) => o.value === zone)) {
      const option = document.createElement("option");
      option.value = zone;
      option.textContent = zone;
      ui.zone.append(option);
    }
    ui.zone.value = zone;
    state.rendered = "";
  }

  async function tap(message, option, button) {
    button.disabled = true;
    await act(`Tapping “${option.title}” failed`, () =>
      call("POST", "/_emulator/inbound", {
        ...sender(),
        reply_to: message.wamid,
        button: String(option.id),
      }),
    );
    button.disabled = false;
  }

  async function sendText(event) {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text) return;
    ui.send.disabled = true;
    const ok = await act("Your message was not sent", () =>
      call("POST", "/_emulator/inbound", { ...sender(), text }),
    );
    ui.send.disabled = false;
    if (ok) {
      ui.message.value = "";
      ui.message.focus();
    }
  }

  // An advisor writes from the WhatsApp Business app on the maison's number.
  async function sendEcho(event) {
    event.preventDefault();
    const text = ui.echoText.value.trim();
    if (!text) return;
    ui.echoSend.disabled = true;
    const ok = await act("The advisor's message was not sent", () =>
      call("POST", "/_emulator/echo", { to: state.client, text }),
    );
    ui.echoSend.disabled = false;
    if (ok) ui.echoText.value = "";
  }

  async function advance(button) {
    const seconds = Number(button.dataset.seconds);
    button.disabled = true;
    await act("The clock did not move", () =>
      call("POST", "/_emulator/clock", { advance_seconds: seconds }),
    );
    button.disabled = false;
  }

  async function followUp() {
    ui.followup.disabled = true;
    ui.followupResult.textContent = "Asking the assistant…";
    const result = await act("The follow-up failed", () =>
      call("POST", state.followup, { client: state.client, intent: "advisor_followup" }),
    );
    ui.followupResult.textContent = result
      ? "The assistant has written; watch the conversation."
      : "";
    ui.followup.disabled = false;
  }

  function updateUrl() {
    const next = new URLSearchParams(window.location.search);
    next.set("client", state.client);
    next.set("name", state.name || "");
    if (state.bsuidOnly) next.set("username", "1");
    else next.delete("username");
    if (state.zoneChosen) next.set("tz", state.zone);
    else next.delete("tz");
    window.history.replaceState(null, "", `${window.location.pathname}?${next}`);
  }

  function switchClient(event) {
    event.preventDefault();
    const raw = ui.number.value.trim();
    const digits = raw.replace(/[\s+\-().]/g, "");
    const bsuid = isBsuid(raw);
    if (!bsuid && !/^\d{6,15}$/.test(digits)) {
      actionError(`“${raw}” is not a WhatsApp number: use digits with the country code.`);
      return;
    }
    actionError("");
    state.client = bsuid ? raw : digits;
    ui.number.value = state.client;
    state.name = ui.name.value;
    state.rendered = "";
    state.openLists.clear();
    if (!state.zoneChosen) setZone(defaultZone(state.client), false);
    updateUrl();
    refresh();
  }

  // ------------------------------------------------------------------ wiring
  ui.name.value = state.name;
  ui.number.value = state.client;
  ui.bsuidOnly.checked = state.bsuidOnly;
  setZone(state.zone, state.zoneChosen);
  ui.bsuidOnly.addEventListener("change", () => {
    state.bsuidOnly = ui.bsuidOnly.checked;
    updateUrl();
  });
  ui.zone.addEventListener("change", () => {
    setZone(ui.zone.value, true);
    updateUrl();
    refresh();
  });
  ui.changeBsuid.addEventListener("click", () => changeIdentity({}, ui.changeBsuid));
  ui.changeNumber.addEventListener("click", () => {
    const raw = ui.newNumber.value.trim();
    const digits = raw.replace(/[\s+\-().]/g, "");
    if (!/^\d{6,15}$/.test(digits)) {
      actionError(`“${raw}” is not a WhatsApp number: use digits with the country code.`);
      return;
    }
    changeIdentity({ new_wa_id: digits }, ui.changeNumber);
  });
  ui.placeCall.addEventListener("click", placeCall);
  ui.echoForm.addEventListener("submit", sendEcho);
  ui.identity.addEventListener("submit", switchClient);
  ui.name.addEventListener("input", () => {
    state.name = ui.name.value;
    updateUrl();
  });
  ui.composer.addEventListener("submit", sendText);
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      sendText(event);
    }
  });
  document.querySelectorAll("[data-seconds]").forEach((button) => {
    button.addEventListener("click", () => advance(button));
  });
  if (state.followup) {
    ui.followupGroup.hidden = false;
    ui.followup.addEventListener("click", followUp);
  }
  loop();
})();
