// The NOC status wall: polls /api/channels every two seconds and redraws one tile per
// channel. A read token, when the API wants one, comes in the URL fragment (/#token=...,
// read in common.js).
// Pages link to one channel as /#channel=<id>: its tile is outlined and scrolled to.
// A channel that follows every variant (variant: all) is followed by a tile per sub-channel
// seen (news@720p, the API lists them after their parent); the parent's tile shows a chip
// per rendition in that rendition's status.
// Each alert takes an operator's answer (real defect / false alarm); block corruption alerts
// also open a dialog that marks the regions on a patch grid over the alert's kept picture.
"use strict";

const POLL_MS = 2000;
const focus = fragment.get("channel");
let scrolled = false; // scroll to the focused tile once, then leave the reader alone
const wall = document.getElementById("wall");
const summary = document.getElementById("summary");
const connection = document.getElementById("connection");
const thumbnails = new Map(); // channel id -> {at, url} of the picture shown

function ago(epochSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function alertItem(alert) {
  const li = el("li", "alert");
  li.dataset.alertId = alert.id;
  const what = el("span", "what", alert.detector + (alert.label ? " / " + alert.label : ""));
  if (alert.resolving_since) what.append(el("span", "tag recovering", "recovering"));
  if (alert.silenced_by) what.append(el("span", "tag silenced", "silenced"));
  if (alert.acknowledged_at) what.append(el("span", "tag acked", "ack " + (alert.acknowledged_by || "")));
  const given = answered.get(alert.id);
  if (given) what.append(el("span", "tag answered", given.replace("_", " ")));
  const since = el("span", "since", "since " + clock(alert.opened_at) + " (" + ago(alert.opened_at) + ")");
  li.append(what, since, answerButtons(alert));
  return li;
}

// -- operator feedback --------------------------------------------------------------------
const REGION_DETECTORS = new Set(["block_corruption"]);
const VERDICTS = [["real_defect", "real"], ["false_alarm", "false alarm"]];
const operator = document.getElementById("operator");
const notice = document.getElementById("notice");
const answered = new Map(); // alert id -> verdict given from this wall
rememberOperator(operator);
carryToken(document.getElementById("label-link"));

function answerButtons(alert) {
  const box = el("span", "answer");
  for (const [verdict, text] of VERDICTS) {
    const button = el("button", verdict.replace("_", "-"), text);
    button.type = "button";
    button.addEventListener("click", () => sendFeedback(alert.id, verdict, null));
    box.append(button);
  }
  if (REGION_DETECTORS.has(alert.detector)) {
    const button = el("button", "mark-regions", "regions…");
    button.type = "button";
    button.addEventListener("click", () => openRegions(alert));
    box.append(button);
  }
  return box;
}

// POST the answer; true when the API stored it, else the reason is shown in the notice.
async function sendFeedback(alertId, verdict, regions) {
  const by = operator.value.trim();
  if (!by) {
    notice.textContent = "enter your name (operator) to answer alerts";
    operator.focus();
    return false;
  }
  const body = { verdict: verdict, by: by };
  if (regions) body.regions = regions;
  try {
    const response = await fetch("/api/alerts/" + encodeURIComponent(alertId) + "/feedback", {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      notice.textContent = "not saved: " + (await refusal(response));
      return false;
    }
  } catch (err) {
    notice.textContent = "not saved: the API is unreachable";
    return false;
  }
  answered.set(alertId, verdict);
  notice.textContent = "saved: " + verdict.replace("_", " ") + " by " + by;
  return true;
}

const dialog = document.getElementById("regions");
const grid = dialog.querySelector(".grid");
const gridSize = document.getElementById("grid-size");
const wholeFrame = document.getElementById("whole-frame");
const dialogError = dialog.querySelector(".error");
let marking = null; // the alert the dialog marks

function drawGrid() {
  patchGrid(grid, Number(gridSize.value), [], () => wholeFrame.checked);
}

gridSize.addEventListener("change", drawGrid);
wholeFrame.addEventListener("change", () => grid.classList.toggle("whole", wholeFrame.checked));
dialog.querySelector(".cancel").addEventListener("click", () => dialog.close());

async function openRegions(alert) {
  marking = alert;
  dialog.querySelector(".which").textContent =
    alert.channel_id + " · " + alert.detector + " since " + clock(alert.opened_at);
  dialogError.textContent = "";
  wholeFrame.checked = false;
  grid.classList.remove("whole");
  drawGrid();
  const img = dialog.querySelector("img");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.removeAttribute("src");
  dialog.showModal();
  try {
    const response = await fetch("/api/alerts/" + encodeURIComponent(alert.id) + "/picture.jpg", { headers: headers() });
    if (response.ok) img.src = URL.createObjectURL(await response.blob());
    else dialogError.textContent = "no picture was kept for this alert";
  } catch (err) {
    dialogError.textContent = "the picture could not be fetched";
  }
}

function markedRegions() {
  if (wholeFrame.checked) return { whole_frame: true };
  const cells = markedCells(grid);
  return cells.length ? { grid: Number(gridSize.value), cells: cells } : null;
}

for (const [verdict] of VERDICTS) {
  dialog.querySelector("." + verdict.replace("_", "-")).addEventListener("click", async () => {
    const regions = markedRegions();
    if (!regions) {
      dialogError.textContent = "mark at least one patch, or the whole frame";
      return;
    }
    if (await sendFeedback(marking.id, verdict, regions)) dialog.close();
    else dialogError.textContent = notice.textContent;
  });
}

function picture(channel) {
  const box = el("div", "picture");
  if (!channel.last_thumbnail) {
    box.textContent = "no picture yet";
    return box;
  }
  const img = el("img");
  img.alt = channel.name;
  const shown = thumbnails.get(channel.id);
  if (shown && shown.at === channel.thumbnail_at) {
    img.src = shown.url;
  } else {
    loadThumbnail(channel, img);
  }
  box.append(img);
  return box;
}

async function loadThumbnail(channel, img) {
  const src = channel.last_thumbnail + "?t=" + channel.thumbnail_at;
  if (!token) {
    thumbnails.set(channel.id, { at: channel.thumbnail_at, url: src });
    img.src = src;
    return;
  }
  // An <img> cannot send a header: fetch the picture and show it from a blob.
  try {
    const response = await fetch(src, { headers: headers() });
    if (!response.ok) return;
    const url = URL.createObjectURL(await response.blob());
    const old = thumbnails.get(channel.id);
    if (old && old.url.startsWith("blob:")) URL.revokeObjectURL(old.url);
    thumbnails.set(channel.id, { at: channel.thumbnail_at, url: url });
    img.src = url;
  } catch (err) {
    // the next poll tries again
  }
}

// Short-term loudness (3 s, LUFS) with the sliding integrated value beside it, when measured.
function loudness(channel) {
  const values = (channel.measurements || {}).loudness;
  if (!values || values.short_term_lufs === undefined) return null;
  const box = el("div", "loudness");
  box.dataset.shortTerm = String(values.short_term_lufs);
  let text = "S " + values.short_term_lufs.toFixed(1) + " LUFS";
  if (values.integrated_lufs !== undefined) text += " · I " + values.integrated_lufs.toFixed(1);
  if (values.true_peak_dbtp !== undefined) text += " · TP " + values.true_peak_dbtp.toFixed(1) + " dBTP";
  box.textContent = text;
  return box;
}

// The parent's chips: one per sub-channel, its label in its own status colour.
function renditionChips(channel, byId) {
  const box = el("div", "renditions");
  for (const id of channel.sub_channels) {
    const sub = byId.get(id);
    const status = sub ? sub.status : "unknown";
    const chip = el("span", "chip status-" + status, id.slice(channel.id.length + 1));
    chip.dataset.channel = id;
    chip.dataset.status = status;
    box.append(chip);
  }
  return box;
}

function tile(channel, byId) {
  const node = el("section", "tile status-" + channel.status);
  node.id = "channel-" + channel.id;
  if (channel.id === focus) node.classList.add("focus");
  node.dataset.channel = channel.id;
  node.dataset.status = channel.status;
  if (channel.parent) {
    node.classList.add("sub-channel");
    node.dataset.parent = channel.parent;
  }
  const head = el("div", "head");
  head.append(el("span", "name", channel.name), el("span", "status", channel.status));
  node.append(head, picture(channel));
  if (channel.sub_channels && channel.sub_channels.length) node.append(renditionChips(channel, byId));
  const meter = loudness(channel);
  if (meter) node.append(meter);
  const list = el("ul", "alerts");
  for (const alert of channel.active_alerts) list.append(alertItem(alert));
  node.append(list);
  const seen = channel.last_segment_at ? "last segment " + ago(channel.last_segment_at) + " ago" : "no segment yet";
  const of = channel.parent ? " · rendition of " + channel.parent : "";
  node.append(el("div", "foot", channel.id + of + " · " + channel.severity + " · " + seen));
  return node;
}

function render(channels) {
  const counts = { ok: 0, alerting: 0, down: 0, unknown: 0 };
  const byId = new Map(channels.map((channel) => [channel.id, channel]));
  const tiles = channels.map((channel) => {
    counts[channel.status] = (counts[channel.status] || 0) + 1;
    return tile(channel, byId);
  });
  const renditions = channels.filter((channel) => channel.parent).length;
  wall.replaceChildren(...tiles);
  wall.dataset.state = "live";
  const focused = wall.querySelector(".tile.focus");
  if (focused && !scrolled) {
    focused.scrollIntoView({ block: "center" });
    scrolled = true;
  }
  fitScreen();
  summary.textContent =
    (channels.length - renditions) + " channels · " +
    (renditions ? renditions + " renditions · " : "") + counts.alerting + " alerting · " + counts.down +
    " down · " + counts.ok + " ok · updated " + clock(Date.now() / 1000);
}

// A wall screen shows every tile at once, as large as fits: try each column count, size the
// tiles so that all rows fit the window's height, keep the count that gives the widest tiles.
// Below 700 px (a phone, a narrow window) the stylesheet's single flowing column stays.
const FIT_MIN_WIDTH = 700;
const PICTURE_RATIO = 9 / 16;

function fitScreen() {
  const tiles = wall.children;
  const width = wall.clientWidth;
  if (tiles.length === 0 || width < FIT_MIN_WIDTH) {
    wall.classList.remove("fitted");
    return;
  }
  const style = getComputedStyle(wall);
  const gap = parseFloat(style.columnGap) || 0;
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  const height = window.innerHeight - wall.getBoundingClientRect().top - parseFloat(style.paddingBottom);
  // What a tile needs besides its picture (name, alerts, footer): the tallest tile's share.
  let chrome = 0;
  for (const tile of tiles) {
    const picture = tile.querySelector(".picture");
    chrome = Math.max(chrome, tile.offsetHeight - (picture ? picture.offsetHeight : 0));
  }
  let best = { columns: 1, tileWidth: 0 };
  for (let columns = 1; columns <= tiles.length; columns++) {
    const rows = Math.ceil(tiles.length / columns);
    const byWidth = (width - padding - gap * (columns - 1)) / columns;
    const byHeight = ((height - gap * (rows - 1)) / rows - chrome) / PICTURE_RATIO;
    const tileWidth = Math.min(byWidth, byHeight);
    if (tileWidth > best.tileWidth) best = { columns, tileWidth };
  }
  wall.style.setProperty("--columns", String(best.columns));
  wall.style.setProperty("--tile-width", Math.floor(best.tileWidth) + "px");
  wall.classList.add("fitted");
}

window.addEventListener("resize", fitScreen);

async function poll() {
  try {
    const response = await fetch("/api/channels", { headers: headers(), cache: "no-store" });
    if (response.status === 401) {
      summary.textContent = "this API needs a read token: open /#token=<token>";
      return;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    render((await response.json()).channels);
    connection.hidden = true;
  } catch (err) {
    connection.hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
