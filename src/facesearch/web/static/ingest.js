"use strict";
// The ingest page: send the files as one ingest job, then poll the job for its progress.
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("ingest-form");
  if (!form) return;
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  function showError(text) {
    $("ingest-error").textContent = text;
    $("ingest-error").hidden = !text;
  }

  function render(job) {
    const bar = $("ingest-progress");
    bar.max = Math.max(job.files, 1);
    bar.value = job.done;
    const added = `${job.images_added} image(s) added, ${job.faces_indexed} face(s) indexed`;
    const counts = `${job.done} of ${job.files} file(s) handled`;
    let text = `${counts}: ${added}`;
    if (job.copies_added) text += `, ${job.copies_added} already stored (provenance added)`;
    if (job.failed.length) text += `, ${job.failed.length} failed`;
    if (job.state === "done") text = `Done. ${text}.`;
    if (job.state === "failed") text = `Stopped: ${job.error}. ${text}.`;
    $("ingest-status").textContent = text;
    $("ingest-status").classList.toggle("error", job.state === "failed");
    const body = $("ingest-failed").querySelector("tbody");
    body.replaceChildren(
      ...job.failed.map((f) => {
        const row = document.createElement("tr");
        for (const text of [f.file, f.reason]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        return row;
      })
    );
    $("ingest-failed").hidden = job.failed.length === 0;
    $("ingest-collection").href = `/sources/${encodeURIComponent(job.source)}`;
  }

  async function poll(url) {
    for (;;) {
      const response = await fetch(url, { credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
      render(body);
      if (body.state === "done" || body.state === "failed") return body;
      await new Promise((r) => setTimeout(r, 400));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const data = new FormData(form);
    $("ingest-submit").disabled = true;
    try {
      const response = await fetch("/v1/ingest-jobs", {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf() },
      });
      const body = await response.json();
      if (!response.ok) {
        showError(body.error ? body.error.message : `The upload was refused (${response.status}).`);
        return;
      }
      $("ingest-job").hidden = false;
      render(body);
      await poll(response.headers.get("Location"));
    } catch (err) {
      showError(`The upload failed: ${err.message}`);
    } finally {
      $("ingest-submit").disabled = false;
    }
  });
})();
