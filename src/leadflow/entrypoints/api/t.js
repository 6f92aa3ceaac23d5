/* leadflow first-party tracking. Include on every page:
   <script src="https://YOUR-LEADFLOW/t.js" data-key="lfw_..." async></script>
   Sends a page view on load and, on every form submission, identifies the visitor by the
   form's email field and records a "Form Submitted" event. */
(function () {
  var script = document.currentScript;
  if (!script) return;
  var key = script.getAttribute("data-key");
  var base = script.src.replace(/\/t\.js(\?.*)?$/, "");
  var store = "leadflow_aid";
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 3) | 8).toString(16);
    });
  }
  var anonymousId;
  try {
    anonymousId = localStorage.getItem(store);
    if (!anonymousId) { anonymousId = uuid(); localStorage.setItem(store, anonymousId); }
  } catch (e) { anonymousId = uuid(); }
  function campaign() {
    var out = {}, q = new URLSearchParams(location.search);
    [["utm_source", "source"], ["utm_medium", "medium"], ["utm_campaign", "name"]]
      .forEach(function (p) { if (q.get(p[0])) out[p[1]] = q.get(p[0]); });
    return out;
  }
  function send(path, message) {
    message.anonymousId = anonymousId;
    message.messageId = uuid();
    message.timestamp = new Date().toISOString();
    message.sentAt = message.timestamp;
    message.writeKey = key;
    message.context = {
      page: { url: location.href, path: location.pathname, referrer: document.referrer,
              title: document.title },
      campaign: campaign(), userAgent: navigator.userAgent,
      library: { name: "leadflow-t.js", version: "1" }
    };
    var body = JSON.stringify(message);
    // text/plain keeps the request "simple": no CORS preflight, and it survives unload.
    if (navigator.sendBeacon && navigator.sendBeacon(base + path, new Blob([body], { type: "text/plain" }))) return;
    fetch(base + path, { method: "POST", body: body, keepalive: true,
                         headers: { "Content-Type": "text/plain" } });
  }
  send("/v1/p", { type: "page", properties: { url: location.href, title: document.title } });
  document.addEventListener("submit", function (event) {
    var form = event.target, traits = {}, fields = {};
    if (!form || !form.elements) return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "password" || el.type === "hidden") return;
      if (el.type === "email" || /e-?mail/i.test(el.name)) traits.email = el.value;
      else if (/^first.?name$/i.test(el.name)) traits.firstName = el.value;
      else if (/^last.?name$/i.test(el.name)) traits.lastName = el.value;
      else fields[el.name] = el.value;
    });
    if (traits.email) send("/v1/i", { type: "identify", traits: traits });
    send("/v1/t", { type: "track", event: "Form Submitted",
                    properties: { form_id: form.id || null, action: form.action || null,
                                  url: location.href, fields: fields } });
  }, true);
})();
