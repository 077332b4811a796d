// Counts down the time left for a question; the page already shows it (without script),
// and the server decides: an answer after the deadline counts as wrong.
(function () {
  var element = document.querySelector("[data-deadline]");
  if (!element) return;
  var deadline = Date.parse(element.getAttribute("data-deadline"));
  var template = element.textContent.replace(/\d+/, "{s}");
  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    element.textContent = template.replace("{s}", String(left));
    if (left > 0) window.setTimeout(tick, 1000);
  }
  tick();
})();
