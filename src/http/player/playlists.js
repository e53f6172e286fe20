// Playlists in the web player: open anyone's by OWNER-KEY/NAME (read-only
// unless it is ours), list ours, make one, add tracks (the + of a search
// result or a song), remove and reorder them. Every change sends the
// version shown; if the playlist changed elsewhere meanwhile the server
// answers 409 and the page says so and reloads it (nothing is overwritten).
// Also the track ahead: while a playlist or an album plays, the next track
// is fetched early (PUT /api/prefetch, 30 s before the end of the current
// one or once it is complete), marked in the list, and a skip cancels it.
// Uses index.html's state, play(), el() and clock(). The JSON API is in
// the README.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const LEAD = 30;  // seconds of the current track left when the next one is fetched
  const open = { list: null };  // the playlist shown
  const ahead = { asked: null, shown: null };

  async function call(method, url, body) {
    const r = await fetch(url, { method, headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify(body || {}) });
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
    return r.json();
  }

  // The controls, above the search results.
  const bar = el("div");
  bar.id = "pl";
  const ref = el("input"); ref.id = "plref"; ref.placeholder = "Open a playlist: OWNER-KEY/NAME"; ref.autocomplete = "off";
  const openBtn = el("button", "", "Open"); openBtn.id = "plopen"; openBtn.type = "button";
  const mine = el("button", "", "My playlists"); mine.id = "plmine"; mine.type = "button";
  const name = el("input"); name.id = "plname"; name.placeholder = "New playlist name"; name.autocomplete = "off";
  const make = el("button", "", "Create"); make.id = "plnew"; make.type = "button";
  bar.append(ref, openBtn, mine, name, make);
  const view = el("div"); view.id = "playlist";
  $("find").after(bar, view);
  for (const input of [ref, name]) input.addEventListener("keydown", e => e.stopPropagation());

  function say(text, err) { view.replaceChildren(el("p", err ? "err" : "note", text)); }

  function hashOf(t, f) { return f.info_hash || t.info_hash; }

  function render(p) {
    open.list = p;
    const t = { info_hash: null, title: p.name, files: [] };
    const list = el("ol", "tracks");
    p.tracks.forEach((tr, i) => {
      const f = { index: tr.file, url: tr.url, info_hash: tr.info_hash, title: tr.title || tr.info_hash,
                  artist: tr.artist, album: tr.album, duration_ms: tr.duration_ms, path: tr.title || tr.info_hash };
      t.files.push(f);
      const li = el("li", "song track");
      li.dataset.hash = tr.info_hash;
      li.dataset.file = tr.file;
      if (tr.url) li.dataset.url = tr.url;
      li.tabIndex = 0;
      const what = el("span", "what");
      what.append(el("span", "title", `${i + 1}. ${f.title}`),
                  el("span", "sub", [tr.artist, tr.album].filter(Boolean).join(" · ")));
      const side = el("span", "side");
      side.append(el("span", "dur", tr.duration_ms ? clock(tr.duration_ms / 1000) : ""), el("br"),
                  el("span", "ahead", "⇣ next, fetching ahead"));
      li.append(what, side);
      if (p.mine) {
        const up = el("button", "up", "↑"), down = el("button", "down", "↓"), rm = el("button", "rm", "×");
        up.title = "Move up"; down.title = "Move down"; rm.title = "Remove";
        up.disabled = i === 0; down.disabled = i === p.tracks.length - 1;
        up.addEventListener("click", e => { e.stopPropagation(); move(i, i - 1); });
        down.addEventListener("click", e => { e.stopPropagation(); move(i, i + 1); });
        rm.addEventListener("click", e => { e.stopPropagation(); edit("DELETE", "/tracks", { positions: [i] }); });
        li.append(up, down, rm);
      }
      li.addEventListener("click", () => play(t, f));
      li.addEventListener("keydown", e => { if (e.key === "Enter") play(t, f); });
      list.append(li);
    });
    const head = el("p", "head");
    head.append(el("strong", "", p.name), ` · version ${p.version} · ${p.tracks.length} track${p.tracks.length === 1 ? "" : "s"}`,
                p.mine ? " · yours: + on a song adds it here" : " · read-only");
    view.replaceChildren(head, list);
    if (!p.tracks.length) view.append(el("p", "note", "No tracks yet."));
    view.append(el("p", "note", `Share it as ${p.playlist}`));
    markAhead();
    addButtons();
  }

  function url(p, tail) { return `/api/playlists/${p.owner}/${encodeURIComponent(p.name)}${tail || ""}`; }

  async function load(owner, nm) {
    say("Reading the playlist from the ring…");
    try {
      const r = await fetch(`/api/playlists/${owner}/${encodeURIComponent(nm)}`);
      if (!r.ok) { say((await r.text()).trim(), true); return; }
      render(await r.json());
    } catch (e) { say("Reading the playlist failed; is the process running?", true); }
  }
  async function edit(method, tail, body) {
    const p = open.list;
    try {
      render(await call(method, url(p, tail), { ...body, version: p.version }));
    } catch (e) {
      await load(p.owner, p.name);
      view.prepend(el("p", "err", e.message));
    }
  }
  function move(from, to) {
    const tracks = open.list.tracks.map(t => t.info_hash);
    const [x] = tracks.splice(from, 1);
    tracks.splice(to, 0, x);
    edit("PUT", "", { tracks });
  }

  openBtn.addEventListener("click", () => {
    const v = ref.value.trim(), cut = v.indexOf("/");
    if (cut < 0) { say("Give OWNER-KEY/NAME (the key as `songswarm id` shows it).", true); return; }
    load(v.slice(0, cut), v.slice(cut + 1));
  });
  ref.addEventListener("keydown", e => { if (e.key === "Enter") openBtn.click(); });
  mine.addEventListener("click", async () => {
    say("Reading your playlists…");
    try {
      const r = await fetch("/api/playlists");
      if (!r.ok) { say((await r.text()).trim(), true); return; }
      const got = await r.json();
      if (!got.playlists.length) { say("No playlists made here yet: name one and press Create."); return; }
      const list = el("ol", "mine");
      for (const p of got.playlists) {
        const li = el("li", "song", `${p.name} · ${p.version === null ? "not in the ring" : p.tracks + " tracks"}`);
        li.addEventListener("click", () => load(got.owner, p.name));
        list.append(li);
      }
      view.replaceChildren(el("p", "head", "Your playlists"), list);
    } catch (e) { say("Reading your playlists failed.", true); }
  });
  make.addEventListener("click", async () => {
    const nm = name.value.trim();
    if (!nm) { say("Name the playlist first.", true); return; }
    try { render(await call("POST", "/api/playlists", { name: nm, tracks: [] })); name.value = ""; }
    catch (e) { say(e.message, true); }
  });
  name.addEventListener("keydown", e => { if (e.key === "Enter") make.click(); });

  // "+" on every search result and song while one of ours is open.
  function addButtons() {
    const p = open.list;
    document.querySelectorAll("#results li.song, #library li.song").forEach(li => {
      const hash = li.dataset.hash || (li.closest(".torrent") && li.closest(".torrent").dataset.hash);
      let b = li.querySelector("button.add");
      if (!p || !p.mine || !hash) { if (b) b.remove(); return; }
      if (b) return;
      b = el("button", "add", "+");
      b.title = "Add to the open playlist";
      b.addEventListener("click", e => { e.stopPropagation(); edit("POST", "/tracks", { tracks: [hash] }); });
      li.append(b);
    });
  }
  new MutationObserver(addButtons).observe($("results"), { childList: true });
  new MutationObserver(addButtons).observe($("library"), { childList: true });

  // The track ahead.
  function nextOf(c) { return c && c.t.files[c.i + 1]; }
  function markAhead() {
    const a = ahead.shown;
    document.querySelectorAll("li.song").forEach(li => li.classList.toggle("prefetching",
      !!a && li.dataset.hash === a.info_hash && +li.dataset.file === a.file && !li.closest(".torrent")));
    // An album's song rows carry the torrent's hash on their section.
    document.querySelectorAll(".torrent li.song").forEach(li => li.classList.toggle("prefetching",
      !!a && li.closest(".torrent").dataset.hash === a.info_hash && +li.dataset.index === a.file));
  }
  function currentDone(c) {
    const p = state.progress.get(hashOf(c.t, c.f)), fp = p && p.files[c.f.index];
    return !!fp && fp.downloaded_percent >= 100;
  }
  async function tick() {
    const c = state.current, n = nextOf(c);
    if (n && c) {
      const key = `${hashOf(c.t, n)}/${n.index}`;
      const len = songLength();
      const due = currentDone(c) || (len > 0 && len - audio.currentTime <= LEAD);
      if (due && ahead.asked !== key) {
        ahead.asked = key;
        try { await call("PUT", "/api/prefetch", { info_hash: hashOf(c.t, n), file: n.index, current: hashOf(c.t, c.f) }); }
        catch (e) { ahead.asked = null; }
      }
    }
    try {
      const r = await fetch("/api/prefetch");
      if (r.ok) { ahead.shown = await r.json(); markAhead(); }
    } catch (e) { /* try again at the next tick */ }
  }
  function poll() { if (!ahead.busy) { ahead.busy = true; tick().finally(() => { ahead.busy = false; }); } }
  setInterval(poll, 1000);
  audio.addEventListener("timeupdate", poll);

  // A skip: the track that plays now is not the one fetched ahead.
  window.onPlay = (t, f) => {
    const a = ahead.shown, hash = hashOf(t, f);
    ahead.asked = null;
    // A track fetched as it played has its URL now: mark it as current.
    document.querySelectorAll("#playlist li.track").forEach(li => {
      if (li.dataset.hash === hash && +li.dataset.file === f.index) li.dataset.url = f.url;
    });
    markCurrent();
    if (a && !(a.info_hash === hash && a.file === f.index)) {
      call("DELETE", "/api/prefetch", { current: hash }).catch(() => {});
      ahead.shown = null;
      markAhead();
    }
  };
})();
