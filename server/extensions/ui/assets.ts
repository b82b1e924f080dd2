// The UI's only static files, kept as strings so the TypeScript build ships them with no copy
// step and no bundler: one stylesheet and one small script (live filter, copy buttons, delete
// confirmation). Pages work without the script: the filter is a GET form, deletes are POST forms.

export const STYLE = `
:root { --fg: #1d2330; --muted: #5f6b7a; --bg: #ffffff; --panel: #f5f7fa; --line: #dde3ea; --accent: #1f6feb; --danger: #c62828; --ok: #2e7d32;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 15px; line-height: 1.45; color: var(--fg); background: var(--bg); }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9aa7b4; --bg: #0d1117; --panel: #161b22; --line: #30363d; --accent: #58a6ff; --danger: #f47067; --ok: #56d364; } }
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 1rem; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
header.top .brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); }
header.top .host { color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
header.top .who { margin-left: auto; display: flex; gap: .6rem; align-items: center; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.35rem; margin: .2rem 0 .8rem; word-break: break-all; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
.crumbs { color: var(--muted); font-size: .9rem; margin-bottom: .3rem; word-break: break-all; }
.muted { color: var(--muted); }
.notice { padding: .6rem .8rem; border: 1px solid var(--line); border-left: 4px solid var(--ok); background: var(--panel); margin-bottom: 1rem; }
.error { border-left-color: var(--danger); }
form.search { display: flex; gap: .5rem; margin-bottom: 1rem; }
input[type=search], input[type=text], input[type=password] { flex: 1; padding: .5rem .6rem; font-size: 1rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); min-width: 0; }
button, .button { padding: .45rem .8rem; font-size: .9rem; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); color: var(--fg); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--danger); border-color: var(--danger); background: transparent; }
button.link { border: 0; background: none; color: var(--accent); padding: 0; font-size: inherit; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-size: .92rem; }
th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
td code, dd code { word-break: break-all; }
.pager { display: flex; justify-content: space-between; align-items: center; margin-top: .8rem; gap: .5rem; }
.pull { display: flex; gap: .4rem; margin: .3rem 0; }
.pull input { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; word-break: break-word; }
.tag { display: inline-block; padding: 0 .4rem; border: 1px solid var(--line); border-radius: 999px; font-size: .8rem; margin: 0 .2rem .2rem 0; background: var(--panel); }
.login { max-width: 22rem; margin: 3rem auto; display: flex; flex-direction: column; gap: .7rem; }
.inline { display: inline; }
@media (max-width: 640px) {
  .wide { display: none; }
  main { padding: .7rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .4rem; }
}
`;

export const SCRIPT = `
(function () {
  'use strict';
  var form = document.querySelector('form.search');
  var results = document.getElementById('results');
  if (form && results) {
    var input = form.querySelector('input[name=q]');
    var timer = 0, seq = 0;
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value, mine = ++seq;
        var url = '/?q=' + encodeURIComponent(q);
        fetch(url + '&partial=1', { credentials: 'same-origin' }).then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); }).then(function (text) {
          if (mine !== seq) return;
          results.innerHTML = text;
          history.replaceState(null, '', q ? url : '/');
        }).catch(function () { form.submit(); });
      }, 200);
    });
  }
  document.addEventListener('click', function (e) {
    var b = e.target.closest && e.target.closest('button[data-copy]');
    if (!b) return;
    var field = document.getElementById(b.getAttribute('data-copy'));
    var done = function () { var old = b.textContent; b.textContent = 'Copied'; setTimeout(function () { b.textContent = old; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(done);
    else { field.select(); document.execCommand('copy'); done(); }
  });
  document.addEventListener('submit', function (e) {
    var msg = e.target.getAttribute('data-confirm');
    if (msg && !confirm(msg)) e.preventDefault();
  });
})();
`;
