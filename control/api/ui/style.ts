/** The dashboard's style sheet (served as /ui/style.css). */
export const STYLE = `
body { font: 13px system-ui, sans-serif; margin: 1rem 1.5rem; color: #1b1f24; background: #f6f8fa; }
h1 { font-size: 1.3rem; margin: 0; }
header { display: flex; gap: 1rem; align-items: center; margin-bottom: 0.8rem; flex-wrap: wrap; }
#status { color: #57606a; }
.error { color: #cf222e; }
.panels { display: flex; gap: 1rem; flex-wrap: wrap; margin-bottom: 1rem; }
.panel, section.vip { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.6rem 0.9rem; }
.panel h2 { font-size: 0.9rem; margin: 0 0 0.4rem; }
dl { display: grid; grid-template-columns: auto auto; gap: 0.1rem 0.8rem; margin: 0; }
dt { color: #57606a; }
dd { margin: 0; font-variant-numeric: tabular-nums; }
section.vip { margin-bottom: 1rem; }
section.vip h2 { font-size: 1rem; margin: 0 0 0.3rem; display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
.muted { color: #57606a; font-weight: normal; }
.panic { color: #fff; background: #cf222e; border-radius: 4px; padding: 0 0.4rem; }
.panic:empty { display: none; }
.flood { color: #fff; background: #cf222e; border-radius: 6px; padding: 0.4rem 0.9rem; margin-bottom: 1rem; font-weight: 600; }
.flood:empty { display: none; }
.summary { display: flex; gap: 1.2rem; align-items: center; margin-bottom: 0.4rem; flex-wrap: wrap; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-top: 1px solid #eaeef2; white-space: nowrap; }
th { color: #57606a; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: #1a7f37; } .down { color: #cf222e; } .unknown { color: #9a6700; }
.drain { color: #9a6700; font-weight: 600; }
.drop { color: #cf222e; }
#outcomes tbody { display: grid; grid-template-columns: repeat(3, auto auto auto); }
#outcomes tr { display: contents; }
.reason { color: #57606a; font-size: 0.85em; }
svg.spark { width: 150px; height: 20px; vertical-align: middle; }
svg.spark polyline { fill: none; stroke: #0969da; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
input.weight { width: 4rem; }
`;
