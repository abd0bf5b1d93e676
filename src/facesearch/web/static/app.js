"use strict";
// The search page: pick a photo, pick a face, see ranked matches, open one.
(function () {
  const PAGE = 24;
  const $ = (id) => document.getElementById(id);
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const isWeb = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

  function placeBoxes(fig, width, height) {
    fig.querySelectorAll("[data-box]").forEach((el) => {
      const [x1, y1, x2, y2] = el.dataset.box.split(",").map(Number);
      el.style.left = (100 * x1) / width + "%";
      el.style.top = (100 * y1) / height + "%";
      el.style.width = (100 * (x2 - x1)) / width + "%";
      el.style.height = (100 * (y2 - y1)) / height + "%";
    });
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    children.forEach((c) => c && node.append(c));
    return node;
  }

  document.querySelectorAll(".figure.boxed").forEach((fig) =>
    placeBoxes(fig, +fig.dataset.width, +fig.dataset.height)
  );

  const app = $("search-app");
  if (!app) return;
  // file: the main probe photo; extra: more photos of the same person; faceIds: stored
  // faces searched with (a result searched again).
  const state = { file: null, extra: [], faceIds: [], face: null, topK: PAGE, data: null, sent: {} };
  // A frame of a video, shown itself or folded in as a copy of a photo: the video's moment.
  const momentOf = (m) => {
    if (m.moment_url) return m.moment_url;
    for (const c of m.copies || []) {
      for (const p of c.provenance || []) if (p.moment_url) return p.moment_url;
    }
    return null;
  };
  const siteOf = (url) => {
    try { return isWeb(url) ? new URL(url).hostname.replace(/^www\./, "") : ""; } catch (e) { return ""; }
  };
  const others = (m) =>
    m.expected_false_matches === null || m.expected_false_matches === undefined
      ? ""
      : `${m.upper_bound ? "<" : "≈"}${Number(m.expected_false_matches.toPrecision(2))} other people expected this high`;

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  function setFile(file) {
    if (!file) return;
    state.file = file;
    state.extra = [];
    state.faceIds = [];
    state.face = null;
    state.topK = PAGE;
    const img = $("probe-img");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    $("probe").hidden = false;
    $("probe").querySelectorAll(".box").forEach((b) => b.remove());
    search();
  }

  // Purpose and case reference are kept for the browser tab's session only.
  ["f-purpose", "f-case"].forEach((id) => {
    const field = $(id);
    field.value = sessionStorage.getItem(id) || "";
    field.addEventListener("change", () => {
      sessionStorage.setItem(id, field.value);
      // A change event also fires when the field merely loses focus: search again only
      // when the value differs from the one the last search was made (and audited) with.
      if ((state.file || state.faceIds.length) && field.value.trim() !== (state.sent[id] || "")) search();
    });
  });

  let latest = 0; // searches can overlap (a changed field, a face picked): the last one wins

  async function search() {
    if (!state.file && !state.faceIds.length) return;
    const purpose = $("f-purpose").value.trim();
    const caseRef = $("f-case").value.trim();
    if (!purpose || !caseRef) {
      setStatus("Give the purpose and the case reference of this search first.", true);
      $(purpose ? "f-case" : "f-purpose").focus();
      return;
    }
    state.sent = { "f-purpose": purpose, "f-case": caseRef };
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("case_ref", caseRef);
    if (state.file) form.append("image", state.file);
    state.extra.forEach((f) => form.append("image", f));
    state.faceIds.forEach((id) => form.append("face_id", String(id)));
    form.append("top_k", String(state.topK));
    if (state.face !== null) form.append("face", String(state.face));
    if ($("f-source").value) form.append("source", $("f-source").value);
    if ($("f-from").value) form.append("captured_from", $("f-from").value);
    if ($("f-to").value) form.append("captured_to", $("f-to").value);
    setStatus("Searching…");
    const ticket = ++latest;
    let response, body;
    try {
      response = await fetch("/v1/search", {
        method: "POST",
        body: form,
        headers: { "X-CSRF-Token": csrf() },
        credentials: "same-origin",
      });
      body = await response.json();
    } catch (err) {
      if (ticket === latest) setStatus("The search failed: " + err, true);
      return;
    }
    if (ticket !== latest) return; // a newer search is under way
    if (!response.ok) {
      const message = body && body.error ? body.error.message : response.statusText;
      setStatus(message + (response.status === 401 ? " (sign in again)" : ""), true);
      $("probe-help").hidden = true; // no face to select in a photo without one
      $("probe").querySelectorAll(".box").forEach((b) => b.remove());
      state.data = null;
      renderResults();
      return;
    }
    state.data = body;
    state.face = body.face;
    const several = body.probes.length + body.face_ids.length;
    if (several > 1) {
      setStatus(`${several} probes of one person, combined by ${body.combine}.`);
    } else if (body.probe) {
      setStatus(`${body.probe.faces.length} face(s) found; searching face ${body.face + 1}.`);
    } else {
      setStatus(`Searching again with face ${body.face_ids[0]} from the results.`);
    }
    if (body.probe && state.file) drawProbe(body.probe);
    else $("probe-help").hidden = true;
    renderProbes();
    renderResults();
  }

  function drawProbe(probe) {
    const fig = $("probe");
    fig.querySelectorAll(".box").forEach((b) => b.remove());
    probe.faces.forEach((face) => {
      const b = face.box;
      const selected = face.index === state.face;
      const button = el("button", {
        type: "button",
        class: "box" + (selected ? " selected" : ""),
        "data-box": `${b.x1},${b.y1},${b.x2},${b.y2}`,
        "data-face": String(face.index),
        "aria-pressed": selected ? "true" : "false",
        "aria-label": `Face ${face.index + 1} of ${probe.faces.length}` + (selected ? " (searched)" : ""),
      });
      button.addEventListener("click", () => {
        state.face = face.index;
        state.topK = PAGE;
        search();
      });
      fig.append(button);
    });
    placeBoxes(fig, probe.width, probe.height);
    $("probe-help").hidden = probe.faces.length < 2;
  }

  function renderProbes() {
    const list = $("probe-list");
    list.replaceChildren();
    // Numbered as the answer's probes_matched counts them: photos first, then stored faces.
    const first = state.file ? 2 : 1;
    state.extra.forEach((f, i) => list.append(el("li", { text: `Probe ${first + i}: ${f.name}` })));
    state.faceIds.forEach((id, j) =>
      list.append(el("li", {}, el("img", { src: `/v1/faces/${id}/thumbnail`, alt: "", width: "48", height: "48" }), ` Probe ${first + state.extra.length + j}: stored face ${id}`))
    );
    $("add-photo").hidden = !state.file && !state.faceIds.length;
  }

  function searchAgain(m) {
    // The matched face becomes the probe; the purpose and case stay those of this search.
    if ($("detail").open) $("detail").close();
    state.file = null;
    state.extra = [];
    state.faceIds = [m.face_id];
    state.face = null;
    state.topK = PAGE;
    const img = $("probe-img");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = m.image_url;
    const fig = $("probe");
    fig.hidden = false;
    fig.querySelectorAll(".box").forEach((b) => b.remove());
    const box = el("span", { class: "box selected", "data-box": `${m.box.x1},${m.box.y1},${m.box.x2},${m.box.y2}` });
    fig.append(box);
    img.onload = () => placeBoxes(fig, img.naturalWidth, img.naturalHeight);
    search();
  }

  function renderResults() {
    const list = $("results");
    list.replaceChildren();
    const data = state.data;
    if (!data) {
      $("summary").textContent = "No results.";
      $("more").hidden = true;
      return;
    }
    const showBelow = $("f-below").checked;
    const shown = data.matches.filter((m) => showBelow || m.is_match);
    const hidden = data.matches.length - shown.length;
    const verdict = $("verdict");
    verdict.textContent = data.verdict;
    verdict.hidden = false;
    verdict.classList.toggle("warn", data.reliable === false);
    $("summary").textContent =
      `${data.likely_matches} likely match(es) at similarity ≥ ${data.threshold.toFixed(2)} ` +
      `among ${data.faces_searched} faces searched` +
      (hidden ? `; ${hidden} result(s) below the threshold hidden.` : ".");
    shown.forEach((m) => list.append(resultCard(m)));
    // More can be shown only when this page was full and, with results below the
    // threshold hidden, when its last result still reached the threshold.
    const last = data.matches[data.matches.length - 1];
    $("more").hidden = data.matches.length < state.topK || (!showBelow && !(last && last.is_match));
  }

  function bandText(m) {
    if (!m.band) return m.is_match ? "Likely match" : "Below threshold";
    return m.band === "chance" ? "Chance level" : m.band[0].toUpperCase() + m.band.slice(1);
  }

  function resultCard(m) {
    const verdict = bandText(m);
    // The whole image, its matched face boxed (placed once the image's size is known).
    const img = el("img", { src: m.image_thumbnail_url, alt: "", loading: "lazy" });
    const fig = el("span", { class: "figure tile-figure" }, img,
      el("span", { class: "box selected", "data-box": `${m.box.x1},${m.box.y1},${m.box.x2},${m.box.y2}` }));
    img.addEventListener("load", () => placeBoxes(fig, img.naturalWidth, img.naturalHeight));
    const open = el(
      "button",
      { type: "button", class: "result-open", "aria-label": `Result ${m.rank}: ${verdict}, similarity ${m.similarity.toFixed(3)}, ${m.file_name}` },
      fig
    );
    open.addEventListener("click", () => openDetail(m));
    const site = siteOf(m.page_url || m.source_url);
    const link = isWeb(m.page_url || m.source_url)
      ? el("a", { href: m.page_url || m.source_url, target: "_blank", rel: "noopener noreferrer", text: site || "Open source page" })
      : el("span", { class: "muted", text: "No source page" });
    const again = el("button", { type: "button", class: "again", text: "Search with this face" });
    again.addEventListener("click", () => searchAgain(m));
    const probes = data_probes();
    return el(
      "li",
      { class: "result " + (m.is_match ? "match" : "below") + " band-" + (m.band || "none").replace(" ", "-"), "data-image-id": String(m.image_id), "data-face-id": String(m.face_id) },
      open,
      el("p", { class: "score" }, el("strong", { text: m.similarity.toFixed(3) }), " ", el("span", { class: "badge", text: verdict })),
      m.band ? el("p", { class: "chance muted", text: others(m) }) : null,
      probes > 1 ? el("p", { class: "probes-matched", text: `Matched probe(s): ${m.probes_matched.map((p) => p + 1).join(", ") || "none"} of ${probes}` }) : null,
      el("p", { class: "source", text: `${m.source} · ${m.file_name}` }),
      m.copies.length ? el("p", { class: "copies", text: `${m.copies.length} copies of this photo, ${new Set(m.copies.flatMap((c) => c.provenance.map((p) => p.page_url || p.path))).size} source page(s)` }) : null,
      el("p", { class: "captured muted", text: m.captured_at ? `Captured ${m.captured_at.slice(0, 10)}` : "Capture date unknown" }),
      el("p", {}, link),
      el("p", {}, again),
      momentOf(m) ? el("p", {}, el("a", { href: momentOf(m), class: "moment", text: "Video at this moment" })) : null
    );
  }

  function data_probes() {
    const d = state.data;
    return d ? d.probes.length + d.face_ids.length : 0;
  }

  function openDetail(m) {
    const dialog = $("detail");
    $("detail-h").textContent = `Result ${m.rank}: ${bandText(m).toLowerCase()}`;
    $("detail-again").onclick = () => searchAgain(m);
    const probeImg = $("probe-img");
    const face = state.data.probe && state.file ? state.data.probe.faces.find((f) => f.index === state.data.face) : null;
    const canvas = $("probe-face");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (face) {
      const b = face.box;
      ctx.drawImage(probeImg, b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1, 0, 0, canvas.width, canvas.height);
    }
    const fig = $("detail-figure");
    fig.querySelectorAll(".box").forEach((x) => x.remove());
    const box = el("span", { class: "box selected", "data-box": `${m.box.x1},${m.box.y1},${m.box.x2},${m.box.y2}` });
    fig.append(box);
    const img = $("detail-img");
    img.onload = () => placeBoxes(fig, img.naturalWidth, img.naturalHeight);
    img.src = m.image_url;
    $("detail-caption").textContent = m.file_name;
    const facts = $("detail-facts");
    facts.replaceChildren();
    [
      ["Similarity", m.similarity.toFixed(4)],
      ["Band", m.band ? `${bandText(m)}: ${others(m)} among ${state.data.faces_searched} faces searched` : "no calibration for this model"],
      ["Verdict", m.is_match ? `Likely match (≥ ${state.data.threshold.toFixed(2)})` : "Below threshold"],
      ["Image", `${m.image_id} · ${m.path}`],
      ["Source", m.source],
      ["Captured", m.captured_at || "unknown"],
    ].forEach(([k, v]) => facts.append(el("dt", { text: k }), el("dd", { text: v })));
    const prov = $("detail-prov");
    prov.replaceChildren();
    const copies = m.copies.length ? m.copies : [{ image_id: m.image_id, width: 0, height: 0, provenance: m.provenance }];
    copies.forEach((c) => {
      if (m.copies.length) prov.append(el("li", { class: "copy-head", text: `Copy: image ${c.image_id}, ${c.width}x${c.height} px, similarity ${c.similarity.toFixed(3)}` }));
      c.provenance.forEach((p) => provItem(prov, p));
    });
    $("detail-page").href = `/images/${m.image_id}?face=${m.face_id}`;
    dialog.showModal();
  }

  function provItem(prov, p) {
    const item = el("li", { text: `[${p.source}] ${p.path}` + (p.captured_at ? ` · captured ${p.captured_at}` : "") + " " });
    if (isWeb(p.source_url)) item.append(el("a", { href: p.source_url, target: "_blank", rel: "noopener noreferrer", text: "image URL" }), " ");
    if (isWeb(p.page_url)) item.append(el("a", { href: p.page_url, target: "_blank", rel: "noopener noreferrer", text: "source page" }));
    prov.append(item);
  }

  $("detail-close").addEventListener("click", () => $("detail").close());
  $("probe-file").addEventListener("change", (e) => setFile(e.target.files[0]));
  $("more-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (!file) return;
    state.extra.push(file);
    state.topK = PAGE;
    e.target.value = "";
    search();
  });
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    setFile(e.dataTransfer.files[0]);
  });
  ["f-source", "f-from", "f-to"].forEach((id) => $(id).addEventListener("change", () => { state.topK = PAGE; search(); }));
  $("f-below").addEventListener("change", renderResults);
  $("more").addEventListener("click", () => {
    state.topK += PAGE;
    search();
  });
})();
