/** The dashboard's HTML: the frame the script fills (/ui). */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xlb</title>
<link rel="stylesheet" href="/ui/style.css">
</head>
<body data-ticks="0">
<header>
  <h1>xlb</h1>
  <span id="status">connecting…</span>
  <label>token <input id="token" type="password" size="24" autocomplete="off"></label>
  <span id="error" class="error"></span>
  <span id="action-error" class="error"></span>
</header>
<div id="flood" class="flood"></div>
<div class="panels">
  <section class="panel" id="daemon">
    <h2>daemon</h2>
    <dl>
      <dt>version</dt><dd data-field="version"></dd>
      <dt>interface</dt><dd data-field="interface"></dd>
      <dt>XDP mode</dt><dd data-field="xdpMode"></dd>
      <dt>attached</dt><dd data-field="attached"></dd>
      <dt>uptime</dt><dd data-field="uptime"></dd>
    </dl>
  </section>
  <section class="panel" id="flow-table">
    <h2>connection table</h2>
    <dl>
      <dt>flows</dt><dd data-field="flows"></dd>
      <dt>slots</dt><dd data-field="slots"></dd>
      <dt>fill</dt><dd data-field="fill"></dd>
      <dt>new flows per CPU</dt><dd data-field="newFlows"></dd>
      <dt>new · established · closing</dt><dd data-field="states"></dd>
      <dt>evicted new · established · closing</dt><dd data-field="evictions"></dd>
      <dt>packets that found no entry</dt><dd data-field="unrecorded"></dd>
    </dl>
  </section>
  <section class="panel" id="outcomes">
    <h2>packets by outcome</h2>
    <table><tbody></tbody></table>
  </section>
</div>
<main id="vips"></main>
<script src="/ui/app.js"></script>
</body>
</html>
`;
