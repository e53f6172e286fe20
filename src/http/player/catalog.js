// The ring's library in the web player: a search box with results as you
// type (GET /api/search), and the whole library (GET /api/library) browsed
// by artist and album. Loaded by index.html after its own script, whose
// play(), el() and clock() it uses. The JSON API is in the README.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const box = $("q"), results = $("results");
  let asked = 0;

  // A song of the ring as index.html's player takes it.
  function asTrack(s) {
    const f = { index: s.file, url: s.url, title: s.title, artist: s.artist, album: s.album,
                duration_ms: s.duration_ms, path: s.title };
    return { t: { info_hash: s.info_hash, artist: s.artist, album: s.album, files: [f] }, f };
  }
  function row(s) {
    const li = el("li", "song hit");
    li.dataset.hash = s.info_hash;
    li.dataset.file = s.file;
    li.tabIndex = 0;
    const what = el("span", "what");
    what.append(el("span", "title", s.title),
                el("span", "sub", [s.artist, s.album].filter(Boolean).join(" · ")));
    const side = el("span", "side");
    side.append(el("span", "dur", s.duration_ms ? clock(s.duration_ms / 1000) : ""), el("br"));
    if (s.seeders !== undefined) side.append(el("span", "seeders", s.seeders === 1 ? "1 seeder" : `${s.seeders} seeders`));
    li.append(what, side);
    // A song not held here is fetched from the ring as it plays.
    const go = () => { const { t, f } = asTrack(s); if (!s.url) { f.info_hash = s.info_hash; } play(t, f); };
    li.addEventListener("click", go);
    li.addEventListener("keydown", e => { if (e.key === "Enter") go(); });
    if (!s.url) {
      li.classList.add("remote");
      li.title = "Not on this peer yet: a click fetches it from the ring";
    }
    return li;
  }
  function show(nodes, note) {
    results.replaceChildren();
    if (note) results.append(el("p", "note", note));
    results.append(...nodes);
  }

  async function search() {
    const q = box.value.trim();
    const mine = ++asked;
    if (!q) { show([]); return; }
    try {
      const r = await fetch("/api/search?q=" + encodeURIComponent(q));
      if (mine !== asked) return;  // a newer keystroke asked since
      if (!r.ok) { show([], (await r.text()).trim()); return; }
      const found = await r.json();
      if (mine !== asked) return;
      const list = el("ol", "hits");
      list.append(...found.results.map(row));
      show([list], found.results.length ? "" : `No song matches “${q}”.`);
    } catch (e) { if (mine === asked) show([], "The search failed; is the process running?"); }
  }
  let timer = null;
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  box.addEventListener("keydown", e => { e.stopPropagation(); if (e.key === "Enter") { clearTimeout(timer); search(); } });

  // The library: artists, each with its albums, each with its songs.
  async function library() {
    const mine = ++asked;
    show([], "Walking the ring…");
    try {
      const r = await fetch("/api/library");
      if (mine !== asked) return;
      if (!r.ok) { show([], (await r.text()).trim()); return; }
      const lib = await r.json();
      const artists = new Map();
      for (const s of lib.songs) {
        const a = s.artist || "Unknown artist", b = s.album || "No album";
        if (!artists.has(a)) artists.set(a, new Map());
        const albums = artists.get(a);
        if (!albums.has(b)) albums.set(b, []);
        albums.get(b).push(s);
      }
      const out = [];
      for (const a of [...artists.keys()].sort((x, y) => x.localeCompare(y))) {
        const sec = el("section", "artist");
        const h = el("h3", "", a);
        h.tabIndex = 0;
        h.addEventListener("click", () => sec.classList.toggle("open"));
        sec.append(h);
        for (const [b, songs] of [...artists.get(a)].sort((x, y) => x[0].localeCompare(y[0]))) {
          const list = el("ol", "hits");
          songs.sort((x, y) => x.info_hash.localeCompare(y.info_hash) || x.file - y.file);
          list.append(...songs.map(row));
          sec.append(el("h4", "", b), list);
        }
        out.push(sec);
      }
      const n = lib.songs.length;
      show(out, `${n === 1 ? "1 song" : n + " songs"} on ${lib.members} ring member${lib.members === 1 ? "" : "s"}${lib.truncated ? " (the first ones)" : ""}. Click an artist to open it.`);
    } catch (e) { if (mine === asked) show([], "The library walk failed."); }
  }
  $("browse").addEventListener("click", library);
})();
