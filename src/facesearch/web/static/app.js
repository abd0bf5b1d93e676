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
  const state = { file: null, face: null, topK: PAGE, data: null, sent: {} };

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  function setFile(file) {
    if (!file) return;
    state.file = file;
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
      if (state.file && field.value.trim() !== (state.sent[id] || "")) search();
    });
  });

  let latest = 0; // searches can overlap (a changed field, a face picked): the last one wins

  async function search() {
    if (!state.file) return;
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
    form.append("image", state.file);
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
      state.data = null;
      renderResults();
      return;
    }
    state.data = body;
    state.face = body.face;
    setStatus(`${body.probe.faces.length} face(s) found; searching face ${body.face + 1}.`);
    drawProbe(body.probe);
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
    $("summary").textContent =
      `${data.likely_matches} likely match(es) at similarity ≥ ${data.threshold.toFixed(2)}` +
      (hidden ? `; ${hidden} result(s) below the threshold hidden.` : ".");
    shown.forEach((m) => list.append(resultCard(m)));
    $("more").hidden = data.matches.length < state.topK;
  }

  function resultCard(m) {
    const verdict = m.is_match ? "Likely match" : "Below threshold";
    const open = el(
      "button",
      { type: "button", class: "result-open", "aria-label": `Result ${m.rank}: ${verdict}, similarity ${m.similarity.toFixed(3)}, ${m.file_name}` },
      el("img", { src: m.thumbnail_url, alt: "", loading: "lazy", width: "160", height: "160" })
    );
    open.addEventListener("click", () => openDetail(m));
    const link = isWeb(m.page_url || m.source_url)
      ? el("a", { href: m.page_url || m.source_url, target: "_blank", rel: "noopener noreferrer", text: "Open source page" })
      : el("span", { class: "muted", text: "No source page" });
    return el(
      "li",
      { class: "result " + (m.is_match ? "match" : "below"), "data-image-id": String(m.image_id) },
      open,
      el("p", { class: "score" }, el("strong", { text: m.similarity.toFixed(3) }), " ", el("span", { class: "badge", text: verdict })),
      el("p", { class: "source", text: `${m.source} · ${m.file_name}` }),
      el("p", {}, link),
      m.moment_url ? el("p", {}, el("a", { href: m.moment_url, class: "moment", text: "Video at this moment" })) : null
    );
  }

  function openDetail(m) {
    const dialog = $("detail");
    $("detail-h").textContent = `Result ${m.rank}: ${m.is_match ? "likely match" : "below threshold"}`;
    const probeImg = $("probe-img");
    const face = state.data.probe.faces.find((f) => f.index === state.data.face);
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
      ["Verdict", m.is_match ? `Likely match (≥ ${state.data.threshold.toFixed(2)})` : "Below threshold"],
      ["Image", `${m.image_id} · ${m.path}`],
      ["Source", m.source],
      ["Captured", m.captured_at || "unknown"],
    ].forEach(([k, v]) => facts.append(el("dt", { text: k }), el("dd", { text: v })));
    const prov = $("detail-prov");
    prov.replaceChildren();
    m.provenance.forEach((p) => {
      const item = el("li", { text: `[${p.source}] ${p.path}` + (p.captured_at ? ` · captured ${p.captured_at}` : "") + " " });
      if (isWeb(p.source_url)) item.append(el("a", { href: p.source_url, target: "_blank", rel: "noopener noreferrer", text: "image URL" }), " ");
      if (isWeb(p.page_url)) item.append(el("a", { href: p.page_url, target: "_blank", rel: "noopener noreferrer", text: "source page" }));
      prov.append(item);
    });
    $("detail-page").href = `/images/${m.image_id}?face=${m.face_id}`;
    dialog.showModal();
  }

  $("detail-close").addEventListener("click", () => $("detail").close());
  $("probe-file").addEventListener("change", (e) => setFile(e.target.files[0]));
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
