// The search page: calls GET /search and renders the same records `searcher query --format json` prints.
"use strict";
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
  if (result.no_match) { $("status").textContent = "No match: no word of the query occurs and nothing is close in meaning."; return; }
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
    const where = document.createElement("div");
    where.className = "where";
    where.textContent = hit.source + (hit.line ? `:${hit.line}` : "") + (hit.anchor ? `#${hit.anchor}` : "") + (hit.page ? ` (page ${hit.page})` : "");
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
  history.replaceState(null, "", "?" + new URLSearchParams({ q: query }));
  $("status").textContent = "Searching…";
  try { render(await api("/search?" + params)); }
  catch (error) { $("results").replaceChildren(); $("status").textContent = "Error: " + error.message; }
}

async function start() {
  $("search").addEventListener("submit", search);
  try {
    const { indexes } = await api("/indexes");
    for (const index of indexes) {
      const option = document.createElement("option");
      option.value = index.name;
      option.textContent = `${index.name} (${index.documents} documents)`;
      $("index").append(option);
    }
  } catch (error) { $("status").textContent = "Error: " + error.message; }
  const q = new URLSearchParams(location.search).get("q");
  if (q) { $("query").value = q; search(); }
}

start();
