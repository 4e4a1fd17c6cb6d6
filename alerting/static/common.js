// What the status wall and its labelling page share: the read token, the operator's name,
// building elements, the API's refusals, and the patch grid regions are marked on.
// A read token, when the API wants one, comes in the URL fragment (#token=...): fragments
// are never sent to the server, so the token stays out of logs.
"use strict";

const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get("token");

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

// A link to the other page keeps the token, so following it needs no second paste.
function carryToken(link) {
  if (token) link.hash = "token=" + encodeURIComponent(token);
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Why the API refused a call: its error message, else the HTTP status.
async function refusal(response) {
  const reply = await response.json().catch(() => null);
  return reply && reply.error ? reply.error.message : "HTTP " + response.status;
}

// The operator's name, remembered in this browser for both pages.
function rememberOperator(input) {
  try { input.value = localStorage.getItem("vqm-operator") || ""; } catch (err) { /* private mode */ }
  input.addEventListener("input", () => {
    try { localStorage.setItem("vqm-operator", input.value.trim()); } catch (err) { /* private mode */ }
  });
}

// An n x n patch grid over a picture: one cell per patch, [row, column] from the top left;
// a click toggles a cell unless locked() says marking is off.
function patchGrid(grid, n, marked, locked) {
  grid.style.setProperty("--grid", String(n));
  const on = new Set((marked || []).map(([row, col]) => row + "," + col));
  const cells = [];
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const cell = el("div", on.has(row + "," + col) ? "marked" : "");
      cell.dataset.row = String(row);
      cell.dataset.col = String(col);
      cells.push(cell);
    }
  }
  grid.replaceChildren(...cells);
  grid.onclick = (event) => {
    const cell = event.target.closest("[data-row]");
    if (cell && !(locked && locked())) cell.classList.toggle("marked");
  };
}

function markedCells(grid) {
  return [...grid.querySelectorAll(".marked")].map((c) => [Number(c.dataset.row), Number(c.dataset.col)]);
}
