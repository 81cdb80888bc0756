/* The advisor console, kept live: countdowns tick, and the page's parts are fetched
   again when the server says something changed (Server-Sent Events). Nothing is fetched
   from outside the console; a draft being typed is never replaced. */
(function () {
  "use strict";

  function countdown(closesAt, now) {
    var ms = Date.parse(closesAt) - now;
    if (!(ms > 0)) { return "closed"; }
    var minutes = Math.floor(ms / 60000), hours = Math.floor(minutes / 60), rest = minutes % 60;
    return hours ? "closes in " + hours + " h " + (rest < 10 ? "0" : "") + rest : "closes in " + rest + " min";
  }

  function waited(since, now) {
    var minutes = Math.max(0, Math.floor((now - Date.parse(since)) / 60000));
    if (minutes < 60) { return "waiting " + minutes + " min"; }
    if (minutes < 1440) { return "waiting " + Math.floor(minutes / 60) + " h " + (minutes % 60 < 10 ? "0" : "") + (minutes % 60); }
    var days = Math.floor(minutes / 1440);
    return "waiting " + days + " day" + (days > 1 ? "s" : "");
  }

  // The countdowns count on the server's clock, which decides the windows: the page
  // says what time it was there when it was made (data-now), and the browser keeps
  // the difference with its own clock (a demo or a test moves the server's).
  var skew = 0;

  function learnClock(doc) {
    var at = doc.body && doc.body.dataset.now, parsed = at ? Date.parse(at) : NaN;
    if (!isNaN(parsed)) { skew = parsed - Date.now(); }
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-closes-at]").forEach(function (el) {
      if (el.dataset.closesAt) { el.textContent = countdown(el.dataset.closesAt, now); }
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = waited(el.dataset.since, now);
    });
  }

  // A long thread opens on its latest messages.
  function showLatest() {
    var thread = document.getElementById("thread");
    if (thread) { thread.scrollTop = thread.scrollHeight; }
  }

  function draftOf(composer) {
    var area = composer && composer.querySelector("textarea");
    return area ? area.value.trim() : "";
  }

  function refresh() {
    fetch(window.location.href, { headers: { "X-Console-Fragment": "1" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        learnClock(fresh);
        if (fresh.body && fresh.body.dataset.live) { document.body.dataset.live = fresh.body.dataset.live; }
        var shown = document.getElementById("thread");
        var atEnd = !shown || shown.scrollHeight - shown.scrollTop - shown.clientHeight < 40;
        var kept = shown ? shown.scrollTop : 0;
        ["inbox-list", "thread", "window-banner", "client-file"].forEach(function (id) {
          var now = document.getElementById(id), next = fresh.getElementById(id);
          if (now && next) { now.replaceWith(next); }
        });
        var composer = document.getElementById("composer"), next = fresh.getElementById("composer");
        if (composer && next) {
          var typing = draftOf(composer) !== "" || composer.contains(document.activeElement);
          var before = composer.querySelector("[data-mode]"), after = next.querySelector("[data-mode]");
          var changed = (before && before.dataset.mode) !== (after && after.dataset.mode);
          if (!typing) {
            composer.replaceWith(next);
          } else if (changed && !composer.querySelector(".notice")) {
            var note = document.createElement("p");
            note.className = "notice notice--warn";
            note.setAttribute("role", "alert");
            note.textContent = "Her window has just changed. When you send, it is decided again: " +
              "outside the window your words wait behind one approved nudge.";
            composer.prepend(note);
          }
        }
        tick();
        var thread = document.getElementById("thread");
        if (atEnd) { showLatest(); } else if (thread) { thread.scrollTop = kept; }
      })
      .catch(function () { /* the next event tries again */ });
  }

  learnClock(document);
  // The stream's address says what the page was made from (since=…); when the stream
  // closes, the browser connects again with the page's latest one.
  function listen(url) {
    var source = new EventSource(url);
    source.addEventListener("change", refresh);
    source.addEventListener("error", function () {
      var next = document.body.dataset.live;
      if (next && next !== url) {
        source.close();
        listen(next);
      }
    });
  }

  if (document.body.dataset.live && window.EventSource) { listen(document.body.dataset.live); }
  tick();
  showLatest();
  window.setInterval(tick, 30000);
})();
