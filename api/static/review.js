// 审核: the review queue — confirm, reject, relabel at keyboard speed.

import { fmtMinutes, fmtNumber, fmtTime, label, t } from "./i18n.js";
import {
  api,
  app,
  cameraById,
  cameraName,
  canReview,
  errorText,
  evidenceUrl,
  factList,
  fill,
  h,
  keyOf,
  loadCameras,
  loadTaxonomy,
  persistenceMinutes,
  problemName,
  s,
  timeEl,
  toast,
} from "./shared.js";

const REVIEW_BATCH = 6; // items asked for at a time
const PRELOAD_AHEAD = 4; // annotated JPEGs fetched and decoded ahead of the operator
const REFILL_BELOW = 3; // ask for more when fewer than this many are left ahead
const QUEUE_POLL_MS = 15_000; // an empty queue looks for new detections this often
// keypress → next item painted, in ms, newest last (read by the browser tests); verdicts are
// sent in the background, and their round trips (keypress → server answered) are kept beside it.
window.__reviewTimings = [];
window.__reviewSaveTimings = [];


// ================================================================== review

export function reviewView() {
  const reviewer = canReview();
  const st = {
    items: [], // pending incidents loaded, in queue order
    pos: 0, // the one on screen
    decided: new Set(), // ids given a verdict here (not to be shown again unless undone)
    undo: [], // verdict entries, newest last
    chain: Promise.resolve(), // verdicts and undos reach the server in keypress order
    mode: null, // null | "reject" | "relabel" | "help"
    relabelPage: 0,
    showClip: false,
    fetching: null,
    maxSeen: 0, // the newest incident id the server has sent (the `after` cursor)
    loaded: false,
    forbidden: false,
    destroyed: false,
  };
  const images = new Map(); // incident id → preloaded <img>

  // ---------------------------------------------------------------- DOM
  const heading = h("h1", { class: "visually-hidden", tabindex: "-1" }, t("review.title"));
  const stage = h("div", { class: "stage" });
  const overlay = h("div", { class: "overlay", hidden: true });
  const stageWrap = h("div", { class: "stage-wrap" }, stage, overlay);
  const queueInfo = h("p", { class: "queue-info" });
  const problemTitle = h("h2", { class: "review-problem" });
  const incidentLink = h("a", { class: "incident-link" });
  const factsBox = h("div", { class: "facts-box" });
  const reasonInput = h("input", {
    type: "text",
    id: "reject-reason",
    maxlength: "500",
    autocomplete: "off",
    "aria-describedby": "reject-hint",
  });
  const reasonLabel = h("label", { for: "reject-reason" });
  const reasonHint = h("p", { class: "hint", id: "reject-hint" });
  const prompt = h("div", { class: "reject-prompt", hidden: true }, reasonLabel, reasonInput, reasonHint);
  const lastLine = h("p", { class: "last-verdict", role: "status", "aria-live": "polite" });
  const readOnly = reviewer ? null : h("p", { class: "read-only" });
  const bulkLink = reviewer ? h("a", { class: "bulk-link small", href: "#/review/bulk" }) : null;
  const side = h(
    "aside",
    { class: "review-side" },
    queueInfo,
    problemTitle,
    incidentLink,
    factsBox,
    prompt,
    lastLine,
    readOnly,
    bulkLink,
  );
  const keybar = h("div", { class: "keybar", role: "group" });
  const card = h("div", { class: "review-card", hidden: true }, stageWrap, side, keybar);
  const emptyTitle = h("h2", {});
  const emptyHint = h("p", { class: "muted" });
  const emptyBox = h("div", { class: "review-empty", hidden: true }, h("span", { class: "empty-mark", "aria-hidden": "true" }), emptyTitle, emptyHint);
  const loading = h("p", { class: "loading" }, t("common.loading"));
  const el = h("section", { class: "review" }, heading, loading, card, emptyBox);

  // ---------------------------------------------------------------- keys and buttons
  const KEYS = [
    { key: "Y", action: "confirm", label: "key.confirm", cls: "key-confirm", verdict: true },
    { key: "N", action: "reject", label: "key.reject", cls: "key-reject", verdict: true },
    { key: "R", action: "relabel", label: "key.relabel", cls: "key-relabel", verdict: true },
    { key: "U", action: "undo", label: "key.undo", verdict: true },
    { key: "V", action: "clip", label: "key.clip" },
    { key: "K", action: "prev", label: "key.prev" },
    { key: "J", action: "next", label: "key.next" },
    { key: "?", action: "help", label: "key.help" },
  ];

  function paintStatic() {
    heading.textContent = t("review.title");
    keybar.setAttribute("aria-label", t("help.title"));
    reasonLabel.textContent = t("review.rejectReason");
    reasonHint.textContent = t("review.rejectHint");
    emptyTitle.textContent = st.forbidden ? t("common.forbidden") : t("review.empty");
    emptyHint.textContent = st.forbidden ? "" : t("review.emptyHint");
    if (readOnly) readOnly.textContent = t("review.readOnly");
    if (bulkLink) bulkLink.textContent = t("review.bulkLink");
    fill(keybar,
      ...KEYS.filter((k) => reviewer || !k.verdict).map((k) =>
        h(
          "button",
          {
            type: "button",
            class: ["key-btn", k.cls],
            dataset: { action: k.action },
            "aria-keyshortcuts": k.key === "?" ? "Shift+/" : k.key,
            onclick: (e) => {
              // a verdict clicked with the mouse must not leave focus on the button, where the next
              // Enter would judge the next item; keyboard activation (detail 0) keeps focus
              if (k.verdict && e.detail > 0) heading.focus({ preventScroll: true });
              act(k.action, e.timeStamp);
            },
          },
          h("kbd", {}, k.key),
          h("span", {}, k.action === "clip" && st.showClip ? t("key.image") : t(k.label)),
        ),
      ),
    );
  }

  function act(action, start) {
    switch (action) {
      case "confirm":
        return verdict("confirm", {}, start);
      case "reject":
        return openReject();
      case "relabel":
        return openRelabel();
      case "undo":
        return undo();
      case "clip":
        return toggleClip();
      case "next":
        return move(1);
      case "prev":
        return move(-1);
      case "help":
        return st.mode === "help" ? closeOverlay() : openHelp();
      default:
        return undefined;
    }
  }

  function onKey(e) {
    if (st.destroyed || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const target = e.target;
    if (target instanceof Element && target.closest("input, textarea, select, [contenteditable='true']")) return;
    const k = keyOf(e);
    if (st.mode === "relabel") {
      if (/^[1-9]$/.test(k)) {
        e.preventDefault();
        const btn = overlay.querySelector(`button[data-key="${k}"]`);
        if (btn) pickRelabel(btn.dataset.code, e.timeStamp);
      } else if (k === "0") {
        e.preventDefault();
        st.relabelPage += 1;
        renderRelabel();
      } else if (k === "Escape" || k === "r") {
        e.preventDefault();
        closeOverlay();
      }
      return;
    }
    if (st.mode === "help") {
      closeOverlay();
      if (k === "Escape" || k === "?") {
        e.preventDefault();
        return;
      }
    }
    if (k === "Escape") {
      closeOverlay();
      return;
    }
    const map = { y: "confirm", n: "reject", r: "relabel", u: "undo", v: "clip", j: "next", k: "prev", "?": "help" };
    const action = map[k];
    if (!action) return;
    e.preventDefault(); // the N that opens the reason box must not be typed into it
    const verdictKey = action === "confirm" || action === "reject" || action === "relabel" || action === "undo";
    if (verdictKey && (e.repeat || !reviewer)) return; // a held key gives one verdict
    try {
      performance.mark("gridsight:review-key", { startTime: e.timeStamp });
    } catch {
      // marks with a start time are recent; the timings array does not need them
    }
    act(action, e.timeStamp);
  }

  reasonInput.addEventListener("keydown", (e) => {
    if (e.isComposing || e.keyCode === 229) return; // Enter that ends a Chinese IME composition
    if (e.key === "Enter") {
      e.preventDefault();
      e.stopPropagation();
      finishReject(reasonInput.value.trim(), e.timeStamp);
    } else if (e.key === "Escape") {
      // Esc never decides anything: it closes the box, and the incident waits as it was
      e.preventDefault();
      e.stopPropagation();
      hidePrompt();
    }
  });

  // ---------------------------------------------------------------- showing an item
  const current = () => st.items[st.pos] || null;

  function imageFor(item) {
    let img = images.get(item.id);
    if (!img) {
      const url = evidenceUrl(item, "annotated") || evidenceUrl(item, "clean");
      if (!url) return h("p", { class: "stage-note" }, t("review.noImage"));
      img = new Image();
      img.decoding = "async";
      img.src = url;
      img.decode().catch(() => {});
      images.set(item.id, img);
    }
    img.className = "evidence-image";
    img.alt = t("review.imageAlt", { id: item.id, problem: problemName(item.problem_code, item.problem_name), camera: cameraName(item) });
    return img;
  }

  /** The first sighting (the start of the persistence window) and the opened picture, side by side. */
  function withFirstSeen(item, media) {
    const url = evidenceUrl(item, "first_seen");
    if (!url || !(media instanceof HTMLImageElement)) return [media];
    const before = h("img", {
      class: "evidence-image",
      src: url,
      decoding: "async",
      alt: t("review.firstSeenAlt", { id: item.id }),
    });
    return [
      h("figure", { class: "ev-first-seen" }, before, h("figcaption", {}, t("review.firstSeenPic", { time: fmtTime(item.first_seen_at) }))),
      h("figure", { class: "ev-opened" }, media, h("figcaption", {}, t("review.openedPic", { time: fmtTime(item.opened_at) }))),
    ];
  }

  function clipFor(item, url) {
    const v = h("video", {
      class: "evidence-video",
      src: url,
      controls: true,
      preload: "auto",
      "aria-label": t("review.clipLabel", { id: item.id }),
    });
    v.muted = true; // autoplay needs it; operators unmute with the controls
    v.playsInline = true;
    v.loop = true;
    v.autoplay = true;
    v.play().catch(() => {});
    return v;
  }

  function stopVideo() {
    const v = stage.querySelector("video");
    if (v) {
      v.pause();
      v.removeAttribute("src");
      v.load();
    }
  }

  function preloadAround() {
    const keep = new Set();
    for (let i = Math.max(0, st.pos - 1); i < Math.min(st.items.length, st.pos + 1 + PRELOAD_AHEAD); i++) {
      imageFor(st.items[i]);
      keep.add(st.items[i].id);
    }
    for (const id of images.keys()) if (!keep.has(id)) images.delete(id);
  }

  function renderFacts(item) {
    const cam = cameraById(item.camera_id);
    const street = item.street ?? cam?.street ?? "";
    const community = item.community ?? cam?.community ?? "";
    fill(problemTitle,
      h("span", { class: "code" }, item.problem_code),
      " ",
      problemName(item.problem_code, item.problem_name),
    );
    incidentLink.textContent = `${t("review.incident", { id: item.id })} · ${t("review.details")}`;
    incidentLink.href = `#/incidents/${item.id}`;
    fill(factsBox,
      factList([
        [t("fact.camera"), [cameraName(item), h("span", { class: "muted small" }, ` ${item.camera_id}`)]],
        [t("fact.address"), item.address ?? cam?.address ?? ""],
        [t("fact.streetCommunity"), [street, community].filter(Boolean).join(" / ")],
        [t("fact.problem"), `${item.problem_code} ${problemName(item.problem_code, item.problem_name)}`],
        [t("fact.zone"), item.zone_name || item.zone],
        [t("fact.detectedBy"), detectedBy(item)],
        [t("fact.firstSeen"), timeEl(item.first_seen_at)],
        [t("fact.opened"), timeEl(item.opened_at)],
        [t("fact.lastSeen"), timeEl(item.last_seen_at)],
        [t("fact.persistence"), fmtMinutes(persistenceMinutes(item))],
        [t("fact.score"), fmtNumber(item.score, 2)],
        [t("fact.recurrences"), fmtNumber(item.recurrences)],
      ]),
    );
  }

  /** Which analyzer and which of its labels produced the detection: "占用分析 · stationary". */
  function detectedBy(item) {
    if (!item.analyzer && !item.label) return "";
    const who = item.analyzer ? label("analyzer", item.analyzer) : "";
    return [who, h("code", { class: "small" }, [item.analyzer, item.label].filter(Boolean).join(":"))].filter(Boolean);
  }

  function updateQueueInfo() {
    queueInfo.textContent = current() ? t("review.position", { i: st.pos + 1, n: st.items.length }) : "";
  }

  /** Puts the current item on screen; with `start` (a keypress time), records how long it took to paint. */
  function show(start) {
    if (st.destroyed) return;
    loading.hidden = true;
    const item = current();
    if (!item) {
      stopVideo();
      card.hidden = true;
      emptyBox.hidden = false;
      delete el.dataset.incidentId;
      paintStatic();
      return;
    }
    emptyBox.hidden = true;
    card.hidden = false;
    el.dataset.incidentId = String(item.id);
    stopVideo();
    const url = st.showClip ? evidenceUrl(item, "clip") : null;
    const media = url ? clipFor(item, url) : imageFor(item);
    if (!url) st.showClip = false;
    fill(stage, ...withFirstSeen(item, media));
    renderFacts(item);
    updateQueueInfo();
    if (start !== undefined) measure(start, item.id, media);
    preloadAround();
    if (st.items.length - st.pos <= REFILL_BELOW) refill();
  }

  function measure(start, id, media) {
    const ready = media instanceof HTMLImageElement ? media.decode().catch(() => {}) : Promise.resolve();
    ready.then(() =>
      requestAnimationFrame(() => {
        if (st.destroyed || current()?.id !== id) return; // replaced before it reached the screen
        setTimeout(() => {
          // the frame that shows the item has been painted
          const end = performance.now();
          window.__reviewTimings.push(Math.round((end - start) * 10) / 10);
          if (window.__reviewTimings.length > 5000) window.__reviewTimings.shift();
          try {
            performance.measure("gridsight:review-next", { start, end });
          } catch {
            // old browsers: the array above is enough
          }
        }, 0);
      }),
    );
  }

  /**
   * Asks the server for the next pending incidents after the newest one seen (`fromStart`: from the
   * oldest, to pick up incidents put back by an undo elsewhere); resolves to how many were added.
   */
  function refill({ fromStart = false } = {}) {
    if (st.fetching) return st.fetching;
    const after = fromStart ? 0 : st.maxSeen;
    st.fetching = api(`/review/next?limit=${REVIEW_BATCH}&after=${after}`)
      .then((list) => {
        const have = new Set(st.items.map((i) => i.id));
        let added = 0;
        for (const item of Array.isArray(list) ? list : []) {
          if (!item) continue;
          st.maxSeen = Math.max(st.maxSeen, item.id);
          if (have.has(item.id) || st.decided.has(item.id)) continue;
          st.items.push(item);
          have.add(item.id);
          added += 1;
        }
        st.loaded = true;
        st.forbidden = false;
        return added;
      })
      .catch((err) => {
        st.loaded = true;
        if (err.status === 403) st.forbidden = true;
        else if (err.status !== 401) toast(t("common.error", { msg: errorText(err) }), "error");
        return 0;
      })
      .finally(() => {
        st.fetching = null;
      });
    return st.fetching.then((added) => {
      if (st.destroyed) return added;
      if (added && !card.hidden) {
        updateQueueInfo();
        preloadAround();
      }
      return added;
    });
  }

  /** After the current item left the list: show the next one, fetching it first if none is loaded. */
  function advance(start) {
    if (st.pos < st.items.length) {
      show(start);
      return;
    }
    refill()
      .then((added) => added || refill({ fromStart: true }))
      .then(() => {
        if (st.destroyed) return;
        if (st.pos >= st.items.length) st.pos = Math.max(0, st.items.length - 1);
        show(start);
      });
  }

  function move(delta) {
    const next = st.pos + delta;
    if (next < 0) return;
    if (next >= st.items.length) {
      refill().then((added) => {
        if (added && st.pos + delta < st.items.length) move(delta);
      });
      return;
    }
    st.pos = next;
    st.showClip = false;
    closeOverlay();
    hidePrompt();
    show();
  }

  // ---------------------------------------------------------------- verdicts
  function enqueue(fn) {
    const p = st.chain.then(fn);
    st.chain = p.catch(() => {});
    return p;
  }

  function verdict(kind, extra, start) {
    const item = current();
    if (!reviewer || !item) return;
    st.items.splice(st.pos, 1);
    st.decided.add(item.id);
    const body = { verdict: kind, ...extra };
    const entry = { item, kind, body, ok: undefined };
    entry.done = enqueue(() => api(`/review/${item.id}`, { method: "POST", body })).then(
      (res) => {
        entry.ok = true;
        entry.result = res;
        if (start !== undefined) {
          window.__reviewSaveTimings.push(Math.round((performance.now() - start) * 10) / 10);
          if (window.__reviewSaveTimings.length > 5000) window.__reviewSaveTimings.shift();
        }
      },
      (err) => {
        entry.ok = false;
        verdictFailed(entry, err);
      },
    );
    st.undo.push(entry);
    if (st.undo.length > 50) st.undo.shift();
    st.showClip = false;
    st.mode = null;
    const name = kind === "relabel" ? problemName(extra.problem_code) : "";
    lastLine.textContent = `${t(`review.done.${kind}`, { id: item.id, name })} · ${t("review.undoHint")}`;
    advance(start);
  }

  function verdictFailed(entry, err) {
    const i = st.undo.indexOf(entry);
    if (i >= 0) st.undo.splice(i, 1);
    if (err.status === 401 || st.destroyed) return; // the login screen takes over
    if (err.status === 409) {
      toast(t("review.taken", { id: entry.item.id }), "warn");
      return;
    }
    st.decided.delete(entry.item.id);
    st.items.splice(Math.min(st.pos, st.items.length), 0, entry.item); // back in front of the operator
    toast(t("review.saveFailed", { id: entry.item.id, msg: errorText(err) }), "error", 8000);
    show();
  }

  async function undo() {
    if (!reviewer) return;
    const entry = st.undo.pop();
    if (!entry) {
      lastLine.textContent = t("review.nothingToUndo");
      return;
    }
    await entry.done;
    if (entry.ok === false) return; // never saved: it is already back in the queue
    try {
      await enqueue(() => api(`/review/${entry.item.id}/undo`, { method: "POST" }));
    } catch (err) {
      if (err.status !== 401) {
        const msg = t("review.undoFailed", { id: entry.item.id, msg: errorText(err) });
        lastLine.textContent = msg;
        toast(msg, "error", 8000);
      }
      return;
    }
    if (st.destroyed) return;
    st.decided.delete(entry.item.id);
    const at = st.items.findIndex((i) => i.id === entry.item.id);
    if (at >= 0) st.pos = at;
    else {
      st.pos = Math.min(st.pos, st.items.length);
      st.items.splice(st.pos, 0, { ...entry.item, review_state: "pending" });
    }
    st.showClip = false;
    closeOverlay();
    hidePrompt();
    lastLine.textContent = t("review.undone", { id: entry.item.id });
    show();
  }

  // ---------------------------------------------------------------- reject reason
  function openReject() {
    if (!reviewer || !current()) return;
    closeOverlay();
    st.mode = "reject";
    reasonInput.value = "";
    prompt.hidden = false;
    reasonInput.focus();
  }

  function hidePrompt() {
    if (prompt.hidden) return;
    prompt.hidden = true;
    if (st.mode === "reject") st.mode = null;
    if (document.activeElement === reasonInput) heading.focus({ preventScroll: true });
  }

  function finishReject(note, start) {
    hidePrompt();
    verdict("reject", note ? { note } : {}, start);
  }

  // ---------------------------------------------------------------- overlays: relabel, help
  function closeOverlay() {
    if (overlay.hidden) return;
    overlay.hidden = true;
    fill(overlay);
    if (st.mode === "relabel" || st.mode === "help") st.mode = null;
  }

  function relabelOptions(item) {
    const watched = new Set(cameraById(item.camera_id)?.problems || []);
    // the camera's own problems first, then the taxonomy's order (related types sit together there)
    return (app.taxonomy || [])
      .filter((p) => p.code !== item.problem_code)
      .map((p, i) => ({ p, i }))
      .sort((a, b) => Number(watched.has(b.p.code)) - Number(watched.has(a.p.code)) || a.i - b.i)
      .map(({ p }) => p);
  }

  function openRelabel() {
    const item = current();
    if (!reviewer || !item) return;
    hidePrompt();
    if (!app.taxonomy) {
      loadTaxonomy().then(
        () => {
          if (current() === item && !st.mode) openRelabel();
        },
        () => toast(t("review.noTaxonomy"), "error"),
      );
      return;
    }
    st.mode = "relabel";
    st.relabelPage = 0;
    renderRelabel();
  }

  function renderRelabel() {
    const item = current();
    if (!item) return closeOverlay();
    const opts = relabelOptions(item);
    const pages = Math.max(1, Math.ceil(opts.length / 9));
    st.relabelPage %= pages;
    const page = opts.slice(st.relabelPage * 9, st.relabelPage * 9 + 9);
    fill(overlay,
      h(
        "div",
        { class: "overlay-box relabel-box", role: "dialog", "aria-labelledby": "relabel-title" },
        h("h2", { id: "relabel-title" }, t("review.relabelTitle")),
        h(
          "p",
          { class: "muted small" },
          `${t("review.current")}：${item.problem_code} ${problemName(item.problem_code, item.problem_name)}`,
        ),
        h(
          "ol",
          { class: "choices" },
          page.map((p, i) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "choice",
                  dataset: { code: p.code, key: String(i + 1) },
                  onclick: (e) => pickRelabel(p.code, e.timeStamp),
                },
                h("kbd", {}, String(i + 1)),
                h("span", { class: "choice-name" }, problemName(p.code, p.name_zh)),
                h("span", { class: "choice-code" }, p.code),
              ),
            ),
          ),
        ),
        h(
          "p",
          { class: "hint" },
          pages > 1 ? `${t("review.relabelMore", { p: st.relabelPage + 1, n: pages })} · ` : "",
          t("review.relabelCancel"),
        ),
      ),
    );
    overlay.hidden = false;
  }

  function pickRelabel(code, start) {
    closeOverlay();
    verdict("relabel", { problem_code: code }, start);
  }

  function openHelp() {
    hidePrompt();
    const rows = [
      ["J", "help.j"],
      ["K", "help.k"],
      ...(reviewer
        ? [
            ["Y", "help.y"],
            ["N", "help.n"],
            ["R", "help.r"],
            ["U", "help.u"],
          ]
        : []),
      ["V", "help.v"],
      ["?", "help.q"],
      ["Esc", "help.esc"],
    ];
    fill(overlay,
      h(
        "div",
        { class: "overlay-box help-box", role: "dialog", "aria-labelledby": "help-title" },
        h("h2", { id: "help-title" }, t("help.title")),
        h("dl", { class: "key-help" }, rows.map(([k, d]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, t(d))])),
        h("p", {}, h("a", { href: "/help/operators", target: "_blank", rel: "noopener" }, t("help.guide"))),
      ),
    );
    overlay.hidden = false;
    st.mode = "help";
  }

  // ---------------------------------------------------------------- clip
  function toggleClip() {
    const item = current();
    if (!item) return;
    const url = evidenceUrl(item, "clip");
    if (!url) {
      lastLine.textContent = t("review.noClip");
      return;
    }
    st.showClip = !st.showClip;
    stopVideo();
    fill(stage, ...(st.showClip ? [clipFor(item, url)] : withFirstSeen(item, imageFor(item))));
    paintStatic();
  }

  // ---------------------------------------------------------------- life cycle
  document.addEventListener("keydown", onKey);
  const poll = setInterval(() => {
    if (!current() && !st.fetching) refill({ fromStart: true }).then((n) => n && show());
  }, QUEUE_POLL_MS);
  paintStatic();
  refill({ fromStart: true }).then(() => show());
  loadCameras()
    .then(() => {
      if (current() && !st.destroyed) renderFacts(current());
    })
    .catch(() => {});

  return {
    el,
    title: t("review.title"),
    destroy() {
      st.destroyed = true;
      document.removeEventListener("keydown", onKey);
      clearInterval(poll);
      stopVideo();
    },
    retranslate() {
      paintStatic();
      if (st.mode === "relabel") renderRelabel();
      else if (st.mode === "help") openHelp();
      if (current()) {
        renderFacts(current());
        updateQueueInfo();
        if (!stage.querySelector("video")) fill(stage, ...withFirstSeen(current(), imageFor(current())));
      }
    },
  };
}

