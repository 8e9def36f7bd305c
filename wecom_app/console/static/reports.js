/* 报表's chart: fines per department, from the data-fines attribute (no inline script). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var holder = document.getElementById("chart-fines");
    if (!holder) { return; }  // nothing to draw on this page (e.g. still being computed)
    var rows = JSON.parse(holder.getAttribute("data-fines") || "[]");
    var chart = echarts.init(holder);
    chart.setOption({
      grid: { left: 8, right: 16, top: 10, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      xAxis: { type: "value", name: "元" },
      yAxis: { type: "category", inverse: true,
               data: rows.length ? rows.map(function (r) { return r[0]; }) : ["（无违规）"] },
      series: [{ type: "bar", name: "罚款（元）", itemStyle: { color: "#c77c02" },
                 data: rows.length ? rows.map(function (r) { return Number(r[1]); }) : [0] }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
