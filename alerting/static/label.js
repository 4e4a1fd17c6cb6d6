// The labelling page (/label.html?detector=block_corruption): the candidates `vqm label
// queue` chose for one detector, one at a time, each answered Defect or Clean (keys d, c;
// s skips, b goes back to the item shown before). For detectors that take regions a 16 x 16
// patch grid lies over the picture: a click marks a patch, g hides or shows the grid, and the
// marked patches go with a Defect. After an answer the next unanswered item is shown.
"use strict";

const REGION_DETECTORS = new Set(["block_corruption"]);
const GRID = 16;
const detector = new URLSearchParams(location.search).get("detector") || "";
const api = "/api/labels/" + encodeURIComponent(detector);
const takesRegions = REGION_DETECTORS.has(detector);
const progress = document.getElementById("progress");
const message = document.getElementById("message");
const notice = document.getElementById("notice");
const operator = document.getElementById("operator");
const candidate = document.getElementById("candidate");
const marking = candidate.querySelector(".marking");
const picture = marking.querySelector("img");
const grid = marking.querySelector(".grid");
const facts = candidate.querySelector(".facts");
const error = candidate.querySelector(".error");
let items = []; // the queue's items, each with its answer (null until given)
let current = -1; // index of the item shown
const shown = []; // indices shown before the current one, for Back
let sending = false; // one answer at a time: a key held down must not post twice

rememberOperator(operator);
operator.addEventListener("input", () => {
  if (operator.value.trim()) notice.textContent = "";
});
carryToken(document.getElementById("wall-link"));
candidate.querySelector(".detector").textContent = detector;
candidate.querySelector(".hint").textContent = takesRegions
  ? "click the patches that show the defect; they are kept with Defect"
  : "";
candidate.querySelector(".toggle-grid").hidden = !takesRegions;

function say(text) {
  message.textContent = text;
  message.hidden = false;
  candidate.hidden = true;
}

async function load() {
  if (!detector) return say("name a detector: /label.html?detector=block_corruption");
  let response;
  try {
    response = await fetch(api + "/queue", { headers: headers(), cache: "no-store" });
  } catch (err) {
    return say("the API is unreachable; reload the page to try again");
  }
  if (response.status === 401) return say("this API needs a read token: add #token=<token> to the address");
  if (!response.ok) return say(await refusal(response));
  items = (await response.json()).items;
  updateProgress();
  if (!items.length) return say("the " + detector + " queue is empty");
  const first = nextUnanswered(-1);
  show(first === null ? 0 : first, false);
  if (first === null) notice.textContent = "every item is answered; b goes back to change one";
}

function updateProgress() {
  const answered = items.filter((item) => item.answer).length;
  progress.textContent = answered + " / " + items.length + " answered";
}

// The first unanswered item after index `after`, going round; null when all are answered.
function nextUnanswered(after) {
  for (let step = 1; step <= items.length; step++) {
    const i = (after + step + items.length) % items.length;
    if (!items[i].answer) return i;
  }
  return null;
}

function show(index, remember) {
  if (remember && current >= 0 && current !== index) shown.push(current);
  current = index;
  const item = items[index];
  candidate.dataset.key = item.channel_id + "/" + item.seq;
  candidate.hidden = false;
  message.hidden = true;
  error.textContent = "";
  showFacts(item);
  const regions = item.answer && item.answer.regions;
  if (takesRegions) patchGrid(grid, regions ? regions.grid : GRID, regions ? regions.cells : []);
  else grid.replaceChildren();
  loadPicture(item);
}

function showFacts(item) {
  const rows = [
    ["item", (current + 1) + " of " + items.length],
    ["channel", item.channel_id + " · segment " + item.seq],
    ["time", item.frame_time.toFixed(2) + " s (stream)"],
    ["score", item.score.toFixed(3) + " (flagged from " + item.threshold.toFixed(3) + ")"],
  ];
  if (item.model_version) rows.push(["model", item.model_version]);
  const answer = item.answer;
  rows.push(["answer", answer ? answer.verdict + " by " + answer.by + " at " + clock(answer.at) : "none yet"]);
  facts.replaceChildren(...rows.flatMap(([term, value]) => [el("dt", "", term), el("dd", "", value)]));
}

async function loadPicture(item) {
  if (picture.src.startsWith("blob:")) URL.revokeObjectURL(picture.src);
  picture.removeAttribute("src");
  const url = api + "/items/" + encodeURIComponent(item.channel_id) + "/" + item.seq + "/picture";
  try {
    const response = await fetch(url, { headers: headers() });
    if (items[current] !== item) return; // moved on meanwhile
    if (response.ok) picture.src = URL.createObjectURL(await response.blob());
    else error.textContent = "no picture: " + (await refusal(response));
  } catch (err) {
    error.textContent = "the picture could not be fetched";
  }
}

// POST the answer for the item shown, then show the next unanswered one.
async function answer(verdict) {
  const item = items[current];
  const by = operator.value.trim();
  if (!item || sending) return;
  if (!by) {
    notice.textContent = "enter your name (operator) to answer";
    operator.focus();
    return;
  }
  const body = { verdict: verdict, by: by };
  const cells = takesRegions && verdict === "defect" ? markedCells(grid) : [];
  if (cells.length) body.regions = { grid: Number(grid.style.getPropertyValue("--grid")), cells: cells };
  sending = true;
  try {
    item.answer = await post(item, body);
  } catch (err) {
    notice.textContent = "not saved: " + err.message;
    return;
  } finally {
    sending = false;
  }
  notice.textContent = "saved: " + verdict + " by " + by;
  updateProgress();
  const next = nextUnanswered(current);
  if (next === null) notice.textContent += "; all " + items.length + " answered";
  show(next === null ? current : next, next !== null);
}

async function post(item, body) {
  let response;
  try {
    response = await fetch(api + "/items/" + encodeURIComponent(item.channel_id) + "/" + item.seq, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new Error("the API is unreachable");
  }
  if (!response.ok) throw new Error(await refusal(response));
  return response.json();
}

function skip() {
  if (current < 0) return;
  const next = nextUnanswered(current);
  show(next === null || next === current ? (current + 1) % items.length : next, true);
}

function back() {
  if (shown.length) show(shown.pop(), false);
  else notice.textContent = "nothing shown before this item";
}

function toggleGrid() {
  if (takesRegions) marking.classList.toggle("grid-off");
}

const ACTIONS = { d: () => answer("defect"), c: () => answer("clean"), s: skip, b: back, g: toggleGrid };

for (const button of candidate.querySelectorAll(".actions button")) {
  button.addEventListener("click", () => ACTIONS[button.dataset.key]());
}

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
  const action = ACTIONS[event.key.toLowerCase()];
  if (!action || candidate.hidden) return;
  event.preventDefault();
  action();
});

load();
