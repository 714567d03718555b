// the differential flame graph (render/html.py): reads the JSON in #flamekit-data, draws B by width, colours by B - A
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("flamekit-data").textContent);
  var names = D.names, TA = D.total_a, TB = D.total_b, ROW = 17;
  var graph = document.getElementById("graph"), info = document.getElementById("info");
  function node(a) { return {name: names[a[0]], a: a[1], b: a[2], kids: a[3] || [], parent: null}; }
  function build(a, parent) {
    var n = node(a); n.parent = parent;
    n.kids = n.kids.map(function (k) { return build(k, n); });
    return n;
  }
  var root = build(D.root, null);
  function shareA(n) { return TA > 0 ? n.a / TA : 0; }
  function shareB(n) { return TB > 0 ? n.b / TB : 0; }
  function delta(n) { return shareB(n) - shareA(n); }
  var maxAbs = 0;
  (function walk(n, depth) {
    if (depth > 0) { maxAbs = Math.max(maxAbs, Math.abs(delta(n))); }
    n.kids.forEach(function (k) { walk(k, depth + 1); });
  })(root, 0);
  var scale = Math.max(maxAbs, 0.005);
  document.getElementById("scale").textContent = (scale * 100).toFixed(1);
  function color(n) {
    var d = delta(n), t = Math.min(1, Math.abs(d) / scale);
    if (Math.abs(d) < 1e-9) { return "hsl(0,0%,90%)"; }
    var light = 94 - 52 * Math.sqrt(t);
    return d > 0 ? "hsl(0,85%," + light + "%)" : "hsl(215,85%," + light + "%)";
  }
  function pct(x) { return (x * 100).toFixed(2) + "%"; }
  function describe(n) {
    var d = delta(n) * 100;
    return n.name + "\nA: " + pct(shareA(n)) + " (" + n.a + " " + (D.unit_a || "samples") + ")" +
      "\nB: " + pct(shareB(n)) + " (" + n.b + " " + (D.unit_b || "samples") + ")" +
      "\ndelta: " + (d >= 0 ? "+" : "") + d.toFixed(2) + " points";
  }
  var zoomed = root;
  function render() {
    while (graph.firstChild) { graph.removeChild(graph.firstChild); }
    var width = graph.clientWidth || 1000, maxDepth = 0, frag = document.createDocumentFragment();
    var chain = [], p = zoomed;
    while (p) { chain.unshift(p); p = p.parent; }
    function box(n, x, w, depth, anc) {
      var el = document.createElement("div");
      el.className = anc ? "fr anc" : "fr";
      el.style.left = (x * 100) + "%";
      el.style.width = (w * 100) + "%";
      el.style.top = (depth * ROW) + "px";
      el.style.background = color(n);
      el.textContent = w * width > 30 ? n.name : "";
      el.title = describe(n);
      el.addEventListener("mouseover", function () { info.textContent = describe(n).replace(/\n/g, "   "); });
      el.addEventListener("click", function () { zoomed = n; render(); });
      frag.appendChild(el);
      maxDepth = Math.max(maxDepth, depth);
    }
    chain.forEach(function (n, i) { if (n !== zoomed) { box(n, 0, 1, i, true); } });
    function lay(n, x, w, depth) {
      box(n, x, w, depth, false);
      if (n.b <= 0) { return; }
      var cx = x;
      n.kids.forEach(function (k) {
        var kw = w * k.b / n.b;
        if (kw * width >= 0.5) { lay(k, cx, kw, depth + 1); }
        cx += kw;
      });
    }
    lay(zoomed, 0, 1, chain.length - 1);
    graph.style.height = ((maxDepth + 1) * ROW + 2) + "px";
    graph.appendChild(frag);
    document.getElementById("reset").disabled = zoomed === root;
  }
  document.getElementById("reset").addEventListener("click", function () { zoomed = root; render(); });
  window.addEventListener("resize", render);
  render();
})();
