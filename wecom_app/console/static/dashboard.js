/* 总览's charts, drawn with Apache ECharts from /console/data/dashboard (same origin). */
(function () {
  "use strict";
  function draw(data) {
    var overdue = echarts.init(document.getElementById("chart-overdue"));
    var names = data.overdue.map(function (d) { return d.department; });
    overdue.setOption({
      grid: { left: 8, right: 16, top: 10, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: names.length ? names : ["（无逾期）"], inverse: true },
      series: [{ type: "bar", name: "逾期人数", itemStyle: { color: "#c77c02" },
                 data: names.length ? data.overdue.map(function (d) { return d.count; }) : [0] }]
    });
    var weeks = echarts.init(document.getElementById("chart-weeks"));
    weeks.setOption({
      title: data.weeks_pending ? { text: "统计中，稍后刷新", left: "center", top: "middle",
                                    textStyle: { fontSize: 13, color: "#6b7280" } } : undefined,
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      legend: { data: ["确认率（%）", "响应中位数（分钟）"] },
      xAxis: { type: "category", data: data.weeks.map(function (w) { return w.week; }) },
      yAxis: [{ type: "value", max: 100, name: "%" }, { type: "value", name: "分钟" }],
      series: [
        { type: "line", name: "确认率（%）", itemStyle: { color: "#07a35a" },
          data: data.weeks.map(function (w) { return w.rate; }) },
        { type: "bar", name: "响应中位数（分钟）", yAxisIndex: 1, itemStyle: { color: "#0b6bcb" },
          data: data.weeks.map(function (w) { return w.median_minutes; }) }
      ]
    });
    window.addEventListener("resize", function () { overdue.resize(); weeks.resize(); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var holder = document.getElementById("chart-overdue");
    if (!holder) { return; }  // nothing to draw on this page (e.g. still being computed)
    fetch(holder.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(draw);
  });
})();
