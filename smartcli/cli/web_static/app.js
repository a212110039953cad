// smart serve: search, result cards with the matched words boxed, a page view per result.
// Every piece of document text and every file name is put in with textContent: nothing
// that comes from the index is ever parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let lastAnswer = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// Similarity to a colour: weak matches blue, strong ones red (0.3 .. 0.9 spans the scale).
function colour(similarity, alpha) {
  const t = Math.max(0, Math.min(1, (similarity - 0.3) / 0.6));
  const hue = Math.round(220 * (1 - t));
  return alpha === undefined ? `hsl(${hue}, 90%, 45%)` : `hsla(${hue}, 90%, 50%, ${alpha})`;
}

function params() {
  const p = new URLSearchParams();
  for (const name of ["mode", "k", "kind", "path_prefix", "glob"]) {
    const value = $(name).value.trim();
    if (value) p.set(name, value);
  }
  p.set("explain", "1");
  return p;
}

async function run(p, label) {
  $("status").textContent = "searching…";
  const started = performance.now();
  let answer;
  try {
    const response = await fetch("/api/search?" + p.toString(), { credentials: "same-origin" });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
  } catch (error) {
    $("status").textContent = "error: " + error.message;
    return;
  }
  lastAnswer = answer;
  const ms = Math.round(performance.now() - started);
  const withheld = answer.withheld ? ` (${answer.withheld} more not shown: their files changed, moved or lie outside the indexed folders)` : "";
  $("status").textContent = `${answer.results.length} results for ${label} in ${ms} ms${withheld}`;
  showResults(answer);
}

function search(event) {
  if (event) event.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  const p = params();
  p.set("q", q);
  history.replaceState(null, "", "#q=" + encodeURIComponent(q));
  run(p, `“${q}”`);
}

function moreLike(result) {
  const p = params();
  p.set("like", String(result.id));
  history.replaceState(null, "", "#like=" + result.id);
  run(p, `pages like ${where(result)}`);
}

// The picture of a page with its marks: word boxes (text pages) or a patch heat map (pictures).
// Cards mark only the strong matches on words (as the snippet highlights them); the page view marks all.
const CARD_MIN_SIMILARITY = 0.5;

function pageWithMarks(result, src, minSimilarity) {
  const outer = el("div", "page");
  const wrap = el("div", "sheet");  // exactly the picture's size: marks are placed in fractions of it
  outer.appendChild(wrap);
  const img = el("img");
  img.alt = `${result.file} page ${result.page}`;
  img.src = src;
  img.addEventListener("error", () => {
    outer.replaceChildren(el("div", "missing", "this page cannot be shown (its file changed or moved since it was indexed)"));
  });
  wrap.appendChild(img);
  const marks = result.marks || {};
  for (const match of marks.words || []) {
    if (match.similarity < minSimilarity || (minSimilarity > 0 && !/[\p{L}\p{N}_]/u.test(match.word || ""))) continue;
    for (const [x0, y0, x1, y1] of match.boxes) {
      const box = el("div", "box");
      box.style.left = (100 * x0) + "%";
      box.style.top = (100 * y0) + "%";
      box.style.width = (100 * (x1 - x0)) + "%";
      box.style.height = (100 * (y1 - y0)) + "%";
      box.style.borderColor = colour(match.similarity);
      box.style.background = colour(match.similarity, 0.15);
      box.title = `${match.query_token ?? "token " + match.token} → ${match.word} (${match.similarity.toFixed(3)})`;
      box.dataset.similarity = match.similarity;
      wrap.appendChild(box);
    }
  }
  const heat = marks.heat;
  if (heat) {
    const [rx0, ry0, rx1, ry1] = heat.region;
    const cw = (rx1 - rx0) / heat.cols, ch = (ry1 - ry0) / heat.rows;
    heat.cells.forEach((similarity, i) => {
      if (similarity === null) return;
      const cell = el("div", "cell");
      const row = Math.floor(i / heat.cols), col = i % heat.cols;
      cell.style.left = (100 * (rx0 + col * cw)) + "%";
      cell.style.top = (100 * (ry0 + row * ch)) + "%";
      cell.style.width = (100 * cw) + "%";
      cell.style.height = (100 * ch) + "%";
      cell.style.background = colour(similarity, 0.45);
      cell.dataset.similarity = similarity;
      wrap.appendChild(cell);
    });
  }
  return outer;
}

function snippet(text, highlights) {
  const node = el("div", "snippet");
  let at = 0;
  for (const [start, end] of highlights) {
    node.appendChild(document.createTextNode(text.slice(at, start)));
    node.appendChild(el("mark", null, text.slice(start, end)));
    at = end;
  }
  node.appendChild(document.createTextNode(text.slice(at)));
  return node;
}

function scores(result) {
  const late = result.late === null ? "" : ` · late ${result.late.toFixed(3)}`;
  return `score ${result.score.toFixed(3)} · anchor ${result.anchor.toFixed(3)}${late}`;
}

// A card's title: rank, file name and page. Breaks fall between words (a long name breaks where
// it must), never inside "page 61".
function title(result) {
  const node = el("div", "file");
  node.appendChild(el("span", "rank", `${result.rank}.`));
  node.appendChild(document.createTextNode(" "));
  node.appendChild(el("span", "name", result.file));
  if (result.kind === "pdf") {
    node.appendChild(document.createTextNode(" "));
    node.appendChild(el("span", "where", `— page ${result.page}`));
  }
  return node;
}

function where(result) {
  return result.kind === "pdf" ? `${result.file} page ${result.page}` : result.file;
}

// Results that nearly repeat a better one (an EPUB's repeated sections) fold into its card.
function folded(results) {
  const repeats = new Map();
  for (const result of results) {
    if (result.near_duplicate_of === null || result.near_duplicate_of === undefined) continue;
    if (!repeats.has(result.near_duplicate_of)) repeats.set(result.near_duplicate_of, []);
    repeats.get(result.near_duplicate_of).push(result);
  }
  return results
    .filter((r) => r.near_duplicate_of === null || r.near_duplicate_of === undefined)
    .map((r) => ({ result: r, repeats: repeats.get(r.id) || [] }));
}

function repeatsNote(repeats) {
  const note = el("div", "repeats");
  const count = repeats.length + 1;
  note.appendChild(el("span", null, `${count} near-identical passages: this one and `));
  repeats.forEach((repeat, i) => {
    const link = el("a", null, where(repeat));
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      event.stopPropagation();
      showPage(repeat);
    });
    if (i) note.appendChild(document.createTextNode(", "));
    note.appendChild(link);
  });
  return note;
}

function showResults(answer) {
  $("viewer").hidden = true;
  $("results").hidden = false;
  $("legend").hidden = !answer.results.some((r) => r.marks && (r.marks.words || r.marks.heat));
  const cards = folded(answer.results).map(({ result, repeats }) => {
    const card = el("article", "card");
    card.tabIndex = 0;
    card.dataset.id = result.id;
    card.appendChild(pageWithMarks(result, result.thumbnail, CARD_MIN_SIMILARITY));
    const meta = el("div", "meta");
    meta.appendChild(title(result));
    meta.appendChild(el("div", "scores", scores(result)));
    meta.appendChild(snippet(result.snippet, result.highlights));
    if (repeats.length) {
      card.dataset.repeats = repeats.length + 1;
      meta.appendChild(repeatsNote(repeats));
    }
    card.appendChild(meta);
    const open = () => showPage(result);
    card.addEventListener("click", open);
    card.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    return card;
  });
  $("results").replaceChildren(...cards);
  if (!cards.length) $("results").appendChild(el("p", "missing", "no results"));
}

function showPage(result) {
  $("results").hidden = true;
  $("viewer").hidden = false;
  $("viewer-title").textContent = result.path + (result.kind === "pdf" ? ` — page ${result.page}` : "");
  const link = $("open-file");
  // The file itself, served by this server (a browser refuses file:// links from a web page).
  if (typeof result.file_url === "string" && result.file_url.startsWith("/file/")) link.href = result.file_url;
  link.textContent = result.kind === "pdf" && result.file_url.includes("#page=") ? `open the file at page ${result.page}` : "open the file";
  $("more-like").onclick = () => moreLike(result);
  $("viewer-page").replaceChildren(pageWithMarks(result, result.picture, -Infinity));
  const rows = (result.matches || []).map((match, i) => {
    const tr = el("tr");
    const token = el("td");
    const swatch = el("span", "swatch");
    swatch.style.background = colour(match.similarity);
    token.appendChild(swatch);
    token.appendChild(document.createTextNode(match.query_token ?? `token ${i}`));
    tr.appendChild(token);
    tr.appendChild(el("td", null, match.word ?? `patch ${match.doc_token}`));
    tr.appendChild(el("td", "sim", match.similarity.toFixed(3)));
    return tr;
  });
  $("tokens").tBodies[0].replaceChildren(...rows);
  window.scrollTo(0, 0);
}

// The token came in the address (?token=); the page set it as a cookie, so it leaves the address
// bar, the history and any screenshot.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname + location.hash);

$("search").addEventListener("submit", search);
$("back").addEventListener("click", () => { if (lastAnswer) showResults(lastAnswer); });

// #q=... (from `smart serve` links or a reload) runs that query on load.
const start = new URLSearchParams(location.hash.slice(1));
if (start.get("q")) { $("q").value = start.get("q"); search(); }
