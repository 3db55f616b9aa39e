// The overview's live figures: the server sends them rendered (and escaped) once a second over
// Server-Sent Events; this swaps them in. Without JavaScript the page still shows them at load.
(function () {
  var target = document.querySelector("[data-live]");
  if (!target || !window.EventSource) return;
  var source = new EventSource(target.getAttribute("data-live"));
  var status = document.getElementById("live-status");
  source.addEventListener("stats", function (event) {
    target.innerHTML = event.data;
    if (status) status.textContent = "live";
  });
  source.addEventListener("down", function (event) {
    if (status) status.textContent = "Redis unreachable: " + event.data;
  });
  source.onerror = function () {
    if (status) status.textContent = "reconnecting";
  };
})();
