// spywall console: targets by country as a bar chart and a choropleth, drawn with d3 (the
// choropleth over world-atlas's Natural Earth countries; all vendored at install time).
// The page keeps its server-drawn chart and symbol map when they are missing or this
// script fails. Counts come from the elements' data attributes, names from the atlas;
// everything is set as attributes or text, never as markup.
"use strict";

(function () {
  const WIDTH = 960, HEIGHT = 480;

  function draw(box, world) {
    const counts = JSON.parse(box.dataset.counts || "{}");
    const countries = topojson.feature(world, world.objects.countries);
    const projection = d3.geoNaturalEarth1().fitSize([WIDTH, HEIGHT], {type: "Sphere"});
    const path = d3.geoPath(projection);
    const most = Math.max(1, ...Object.values(counts));
    const colour = d3.scaleSequential(d3.interpolateReds).domain([0, most]);
    const svg = d3.create("svg")
      .attr("class", "map choropleth-map")
      .attr("viewBox", "0 0 " + WIDTH + " " + HEIGHT)
      .attr("role", "img")
      .attr("aria-label", "Targets by country, countries shaded by count");
    svg.append("path").attr("class", "sphere").attr("d", path({type: "Sphere"}));
    svg.append("path").attr("class", "grat").attr("d", path(d3.geoGraticule10()));
    svg.append("g").selectAll("path")
      .data(countries.features)
      .join("path")
      .attr("class", "country")
      .attr("data-country", function (d) { return String(d.id); })
      .attr("data-count", function (d) { return String(counts[String(Number(d.id))] || 0); })
      .attr("fill", function (d) {
        const n = counts[String(Number(d.id))];
        return n ? colour(n) : "#e8ecf1";
      })
      .attr("d", path)
      .append("title")
      .text(function (d) {
        const n = counts[String(Number(d.id))] || 0;
        return (d.properties && d.properties.name ? d.properties.name : String(d.id)) +
          ": " + n + " target(s)";
      });
    box.replaceChildren(svg.node());
    box.dataset.drawn = "1";
  }

  // A horizontal bar chart with d3 (band and linear scales, an axis): one bar a key.
  function bars(box) {
    const counts = JSON.parse(box.dataset.counts || "{}");
    const rows = Object.entries(counts).sort(function (a, b) { return b[1] - a[1]; });
    if (!rows.length) return;
    const width = 520, row = 24, left = 48, height = rows.length * row + 28;
    const x = d3.scaleLinear().domain([0, d3.max(rows, function (r) { return r[1]; })])
      .nice().range([left, width - 24]);
    const y = d3.scaleBand().domain(rows.map(function (r) { return r[0]; }))
      .range([0, rows.length * row]).padding(0.2);
    const svg = d3.create("svg").attr("class", "bars d3-bars")
      .attr("viewBox", "0 0 " + width + " " + height).attr("role", "img")
      .attr("aria-label", "Targets by country");
    svg.append("g").selectAll("rect").data(rows).join("rect")
      .attr("class", "bar").attr("data-key", function (r) { return r[0]; })
      .attr("x", left).attr("y", function (r) { return y(r[0]); })
      .attr("width", function (r) { return x(r[1]) - left; })
      .attr("height", y.bandwidth())
      .append("title").text(function (r) { return r[0] + ": " + r[1]; });
    svg.append("g").attr("class", "axis-y").attr("transform", "translate(" + left + ",0)")
      .call(d3.axisLeft(y).tickSizeOuter(0));
    svg.append("g").attr("class", "axis-x")
      .attr("transform", "translate(0," + rows.length * row + ")")
      .call(d3.axisBottom(x).ticks(Math.min(5, x.domain()[1])).tickFormat(d3.format("d")));
    box.replaceChildren(svg.node());
    box.dataset.drawn = "1";
  }

  function start() {
    if (typeof d3 === "undefined") return;
    document.querySelectorAll(".barchart[data-counts]").forEach(bars);
    if (typeof topojson === "undefined") return;
    const boxes = document.querySelectorAll(".choropleth[data-atlas]");
    if (!boxes.length) return;
    fetch(boxes[0].dataset.atlas, {credentials: "same-origin"})
      .then(function (answer) { return answer.ok ? answer.json() : Promise.reject(answer); })
      .then(function (world) { boxes.forEach(function (box) { draw(box, world); }); })
      .catch(function () { /* keep the server-drawn symbol map */ });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
