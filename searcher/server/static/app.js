// The search page: calls GET /search and renders the same records `searcher query --format json` prints;
// a hit's location opens the file around that line through GET /document. The whole search (query, index,
// filters, mode) lives in the URL, so a reload or a shared link gives the same results.
"use strict";
const FIELDS = {
  q: "query", index: "index", mode: "mode", k: "k", path: "path", type: "type", changed_within: "changed_within",
  min_score: "min_score",
};
const CONTEXT_LINES = 12;
const $ = (id) => document.getElementById(id);

function token() { return $("token").value || localStorage.getItem("searcher-token") || ""; }

async function api(path) {
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const response = await fetch(path, { headers });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status === 401) $("token-label").hidden = false;
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function highlighted(text, spans) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of spans || []) {
    out.append(text.slice(at, start));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(start, end);
    out.append(mark);
    at = end;
  }
  out.append(text.slice(at));
  return out;
}

function render(result) {
  const list = $("results");
  list.replaceChildren();
  if (result.no_match) { $("status").textContent = `No match: ${result.reason}.`; return; }
  $("status").textContent = result.hits.length ? `${result.hits.length} results from ${result.index}` : "Nothing passed the filters.";
  for (const hit of result.hits) {
    const li = document.createElement("li");
    li.className = "hit";
    const title = document.createElement("div");
    const name = document.createElement("span");
    name.className = "title";
    name.textContent = hit.heading && !hit.heading.startsWith(hit.title) ? `${hit.title} › ${hit.heading}` : (hit.heading || hit.title);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    title.append(name, score);
    const where = document.createElement("a");
    where.className = "where";
    where.textContent = hit.source + (hit.line ? `:${hit.line}` : "") + (hit.anchor ? `#${hit.anchor}` : "") + (hit.page ? ` (${/\.(pptx|odp)$/i.test(hit.source) ? "slide" : "page"} ${hit.page})` : "");
    where.href = "/document?" + documentParams(hit);
    where.addEventListener("click", (event) => { event.preventDefault(); showDocument(hit); });
    if (hit.index && result.index === "*") {
      const from = document.createElement("span");
      from.className = "from";
      from.textContent = hit.index;
      title.append(from);
    }
    const snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.append(highlighted(hit.snippet, hit.highlights));
    li.append(title, where, snippet);
    if (hit.more && hit.more.length) {
      const more = document.createElement("div");
      more.className = "more";
      more.textContent = "also at line " + hit.more.map((m) => m.line).join(", ");
      li.append(more);
    }
    if (hit.duplicates && hit.duplicates.length) {
      const dups = document.createElement("div");
      dups.className = "dups";
      dups.textContent = "the same text in " + hit.duplicates.join(", ");
      li.append(dups);
    }
    list.append(li);
  }
}

function documentParams(hit) {
  const line = hit.line || 1;
  const params = new URLSearchParams({ source: hit.source, start_line: Math.max(1, line - CONTEXT_LINES),
                                       end_line: line + CONTEXT_LINES });
  if (hit.index) params.set("index", hit.index);
  else if ($("index").value) params.set("index", $("index").value);
  return params;
}

// The hit's file around its line, in a panel under the hit list; the hit's own line is marked.
async function showDocument(hit) {
  const panel = $("document");
  panel.hidden = false;
  $("document-title").textContent = hit.source + (hit.line ? `:${hit.line}` : "");
  const body = $("document-text");
  body.replaceChildren();
  try {
    const lines = await api("/document?" + documentParams(hit));
    lines.text.split("\n").forEach((text, i) => {
      const number = lines.start_line + i;
      const row = document.createElement("div");
      row.className = number === hit.line ? "line hit-line" : "line";
      const gutter = document.createElement("span");
      gutter.className = "number";
      gutter.textContent = String(number);
      row.append(gutter, text);
      body.append(row);
    });
    $("document-more").textContent = `lines ${lines.start_line}–${lines.end_line} of ${lines.total_lines}`;
    panel.scrollIntoView({ block: "nearest" });
  } catch (error) { $("document-more").textContent = "Error: " + error.message; }
}

// Form <-> URL: every field that differs from its default is a query-string parameter.
function stateFromForm() {
  const state = new URLSearchParams();
  for (const [key, id] of Object.entries(FIELDS)) {
    const value = $(id).value.trim();
    if (value && value !== $(id).defaultValue && !(id === "mode" && value === "hybrid")
        && !(id === "index" && value === $("index").options[0]?.value)) state.set(key, value);
  }
  if (!$("per_doc").checked) state.set("per_doc", "false");
  return state;
}

function formFromState(state) {
  for (const [key, id] of Object.entries(FIELDS)) if (state.has(key)) $(id).value = state.get(key);
  if (state.has("per_doc")) $("per_doc").checked = state.get("per_doc") !== "false";
}

async function search(event) {
  if (event) event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  if ($("token").value) localStorage.setItem("searcher-token", $("token").value);
  const params = new URLSearchParams({ query, k: $("k").value || "10", mode: $("mode").value, per_doc: $("per_doc").checked });
  if ($("index").value) params.set("index", $("index").value);
  for (const glob of $("path").value.split(/\s+/).filter(Boolean)) params.append("path", glob);
  for (const type of $("type").value.split(/[\s,]+/).filter(Boolean)) params.append("type", type);
  if ($("min_score").value) params.set("min_score", $("min_score").value);
  if ($("changed_within").value.trim()) params.set("changed_within", $("changed_within").value.trim());
  const state = stateFromForm();
  if ("?" + state !== location.search) history.pushState(null, "", "?" + state);
  $("document").hidden = true;
  $("status").textContent = "Searching…";
  try { render(await api("/search?" + params)); }
  catch (error) { $("results").replaceChildren(); $("status").textContent = "Error: " + error.message; }
}

async function start() {
  $("search").addEventListener("submit", search);
  try {
    const { indexes } = await api("/indexes");
    if (indexes.length > 1) {
      const all = document.createElement("option");
      all.value = "*";
      all.textContent = `all ${indexes.length} indexes`;
      $("index").append(all);
    }
    for (const index of indexes) {
      const option = document.createElement("option");
      option.value = index.name;
      option.textContent = `${index.name} (${index.documents} document${index.documents === 1 ? "" : "s"})`;
      $("index").append(option);
    }
  } catch (error) { $("status").textContent = "Error: " + error.message; }
  restore();
  window.addEventListener("popstate", restore);
}

function restore() {
  const state = new URLSearchParams(location.search);
  formFromState(state);
  const filters = ["path", "type", "changed_within", "min_score", "k", "mode", "per_doc"];
  if (filters.some((key) => state.has(key))) $("options").open = true;
  if (state.get("q")) search();
}

start();
