// The chat page: ask, read the answer as it streams, open the cited lines.
// Plain DOM, no dependencies, no build step. Text from the server is only
// ever set as textContent, never parsed as HTML.
"use strict";

(() => {
  const log = document.getElementById("log");
  const empty = document.getElementById("empty");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const dialog = document.getElementById("source");
  const sourceTitle = document.getElementById("source-title");
  const sourceWhere = document.getElementById("source-where");
  const sourceLines = document.getElementById("source-lines");

  let conversationId = newId();
  let asking = false;
  let turns = 0;
  let opener = null; // what had focus before the source opened, to return to
  const narrow = matchMedia("(max-width: 40rem)"); // as in style.css
  const CONTEXT = 12; // lines shown around the cited ones

  // crypto.randomUUID needs a secure context; a team server on plain http is not one.
  function newId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  // What a converted format calls its parts, as qa.models.PAGE_WORDS does.
  const PAGE_WORDS = { ".pdf": "page", ".pptx": "slide", ".xlsx": "sheet", ".xlsm": "sheet", ".epub": "chapter" };

  // "file:line", "file:first-last", "handbook.pdf:57 (page 3)": as qa.models.label writes a citation.
  function label(item) {
    const lines = item.line_start === item.line_end ? `${item.line_start}` : `${item.line_start}-${item.line_end}`;
    if (item.page === undefined || item.page === null) return `${item.source}:${lines}`;
    const dot = item.source.lastIndexOf(".");
    const word = PAGE_WORDS[dot >= 0 ? item.source.slice(dot).toLowerCase() : ""] || "page";
    return `${item.source}:${lines} (${word} ${item.page})`;
  }

  // Offsets from the server count code points; JavaScript strings count UTF-16 units.
  function marked(text, spans, tag) {
    const chars = Array.from(text);
    const out = document.createDocumentFragment();
    let at = 0;
    for (const [start, end] of [...(spans || [])].sort((a, b) => a[0] - b[0])) {
      if (start < at || end <= start) continue;
      out.append(chars.slice(at, start).join(""));
      out.append(el(tag, { text: chars.slice(start, end).join("") }));
      at = end;
    }
    out.append(chars.slice(at).join(""));
    return out;
  }

  function readingText(reading) {
    if (!reading) return "";
    if (typeof reading === "string") return reading;
    return reading.text || reading.english || reading.reading || "";
  }

  function chip(item, what) {
    return el("button", {
      type: "button",
      class: "chip",
      text: label(item),
      "aria-label": `Open ${what} ${label(item)} in the document`,
      "aria-haspopup": "dialog",
      onclick: (event) => openSource(item, event.currentTarget),
    });
  }

  // The answer's text with each [n] a button that opens citation n.
  function answerText(text, citations) {
    const paragraph = el("p", { class: "answer-text" });
    const parts = text.split(/(\[\d+\])/);
    for (const part of parts) {
      const match = /^\[(\d+)\]$/.exec(part);
      const citation = match ? citations[Number(match[1]) - 1] : undefined;
      if (citation) {
        paragraph.append(el("button", {
          type: "button",
          class: "ref",
          text: part,
          "aria-label": `citation ${match[1]}, ${label(citation)}`,
          "aria-haspopup": "dialog",
          onclick: (event) => openSource(citation, event.currentTarget),
        }));
      } else if (part) {
        paragraph.append(part);
      }
    }
    return paragraph;
  }

  function citationList(citations) {
    const list = el("ol", { class: "citations", "aria-label": "Citations" });
    citations.forEach((citation, index) => {
      const reading = readingText(citation.reading);
      list.append(el("li", {},
        el("div", { class: "cite-head" }, el("span", { class: "number", text: `[${index + 1}]` }), chip(citation, "citation")),
        el("blockquote", { class: "quote" }, marked(citation.quote, citation.marks, "strong")),
        reading ? el("p", { class: "reading" }, el("span", { class: "reading-label", text: "Reading: " }), reading) : null,
      ));
    });
    return list;
  }

  function passageList(passages, open) {
    const details = el("details", { class: "passages", open });
    details.append(el("summary", { text: open ? `Closest passages (${passages.length})` : `Passages read (${passages.length})` }));
    const list = el("ol", {});
    for (const passage of passages) {
      const text = passage.text.length > 400 ? passage.text.slice(0, 400) + "…" : passage.text;
      list.append(el("li", {}, chip(passage, "passage"), el("p", { class: "passage-text", text })));
    }
    details.append(list);
    return details;
  }

  function votes(answerId) {
    const status = el("span", { class: "vote-status", role: "status" });
    const question = el("span", { class: "votes-label", text: "Was this useful?", id: `votes-${answerId}` });
    const group = el("div", { class: "votes", role: "group", "aria-labelledby": question.id });
    const buttons = [
      ["up", "👍", "Good answer"],
      ["down", "👎", "Bad answer"],
    ].map(([vote, face, name]) => el("button", {
      type: "button",
      class: "vote",
      "aria-label": name,
      "aria-pressed": "false",
      text: face,
      onclick: async () => {
        buttons.forEach((button) => { button.disabled = true; });
        const response = await api("feedback", { answer_id: answerId, vote });
        if (response.ok) {
          buttons.forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.vote === vote)));
          status.textContent = "Thanks, your vote is recorded.";
        } else {
          buttons.forEach((button) => { button.disabled = false; });
          status.textContent = await detail(response);
        }
      },
    }));
    buttons.forEach((button, index) => { button.dataset.vote = index === 0 ? "up" : "down"; });
    group.append(question, ...buttons, status);
    return group;
  }

  function renderAnswer(box, answerId, answer) {
    box.replaceChildren();
    if (answer.abstained) box.classList.add("abstained");
    box.append(answerText(answer.answer, answer.citations));
    const notes = [];
    if (answer.reason) notes.push(answer.reason);
    if (answer.confidence !== undefined && answer.confidence !== null) notes.push(`Confidence: ${answer.confidence}`);
    if (answer.searched) notes.push(`Searched as: ${answer.searched}`);
    for (const warning of answer.warnings || []) notes.push(warning);
    for (const note of notes) box.append(el("p", { class: "note", text: note }));
    if (answer.citations.length) box.append(citationList(answer.citations));
    if (answer.passages.length) box.append(passageList(answer.passages, answer.abstained));
    box.append(votes(answerId));
  }

  function api(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  }

  async function detail(response) {
    if (response.status === 401) {
      location.reload(); // signed out: the server shows its sign-in form
      return "Signing in again…";
    }
    try {
      return (await response.json()).detail || `the server answered ${response.status}`;
    } catch {
      return `the server answered ${response.status}`;
    }
  }

  // Server-sent events from a POST: EventSource can only GET.
  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) yield [name, JSON.parse(data.join("\n"))];
      }
      if (done) return;
    }
  }

  async function ask(question) {
    asking = true;
    send.disabled = true;
    empty.hidden = true;
    turns += 1;
    const box = el("div", { class: "answer", "aria-busy": "true" },
      el("p", { class: "pending", text: "Looking through the documents…" }));
    const turn = el("article", { class: "turn", "aria-label": `Question ${turns}` },
      el("div", { class: "question" }, el("span", { class: "visually-hidden", text: "You asked: " }), question),
      box);
    log.append(turn);
    turn.scrollIntoView({ block: "end", behavior: "smooth" });
    try {
      const response = await api("chat/stream", { conversation_id: conversationId, question });
      if (!response.ok) throw new Error(await detail(response));
      let streamed = null;
      for await (const [name, data] of events(response)) {
        if (name === "text") {
          if (!streamed) {
            streamed = el("p", { class: "answer-text streaming" });
            box.replaceChildren(streamed);
          }
          streamed.append(data.text);
        } else if (name === "answer") {
          renderAnswer(box, data.answer_id, data.answer);
        } else if (name === "error") {
          throw new Error(data.detail);
        }
      }
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", role: "alert", text: `No answer: ${error.message}` }));
    } finally {
      box.setAttribute("aria-busy", "false");
      asking = false;
      send.disabled = false;
    }
  }

  async function openSource(item, from) {
    opener = from;
    sourceTitle.textContent = label(item);
    sourceWhere.textContent = "Loading…";
    sourceLines.replaceChildren();
    if (!dialog.open) {
      dialog.showModal();
      document.body.classList.add("source-open");
    }
    const query = new URLSearchParams({
      source: item.source, line_start: item.line_start, line_end: item.line_end,
      char_start: item.char_start, char_end: item.char_end, context: CONTEXT,
    });
    let excerpt;
    try {
      const response = await fetch(`source?${query}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(await detail(response));
      excerpt = await response.json();
    } catch (error) {
      sourceWhere.textContent = `Cannot open the source: ${error.message}`;
      return;
    }
    const first = excerpt.line_start;
    const last = excerpt.line_end;
    const shownLast = excerpt.first_line + excerpt.lines.length - 1;
    sourceWhere.textContent = `${first === last ? `Line ${first}` : `Lines ${first}–${last}`} cited; `
      + `lines ${excerpt.first_line}–${shownLast} of ${excerpt.total_lines} shown.`;
    const marks = new Map(excerpt.marked.map(([line, start, end]) => [line, [start, end]]));
    let target = null;
    excerpt.lines.forEach((text, index) => {
      const number = excerpt.first_line + index;
      const cited = number >= first && number <= last;
      const mark = marks.get(number);
      const row = el("div", { class: cited ? "line cited" : "line", "data-line": number },
        el("span", { class: "ln", "aria-hidden": "true", text: number }),
        el("span", { class: "text" },
          cited ? el("span", { class: "visually-hidden", text: `Cited line ${number}: ` }) : null,
          mark ? marked(text, [mark], "mark") : text || "\u00a0"));
      if (cited && !target) {
        target = row;
        row.tabIndex = -1;
      }
      sourceLines.append(row);
    });
    if (target) {
      target.scrollIntoView({ block: "center" });
      target.focus({ preventScroll: true });
    }
    // Keep what was opened in sight: beside the sheet on a wide screen, above it on a phone.
    if (from && from.isConnected) from.scrollIntoView({ block: narrow.matches ? "start" : "nearest" });
  }

  function closeSource() {
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("close", () => {
    document.body.classList.remove("source-open");
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  });
  document.getElementById("source-close").addEventListener("click", closeSource);
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) closeSource(); // a click on the backdrop
  });

  document.getElementById("new-conversation").addEventListener("click", () => {
    conversationId = newId();
    turns = 0;
    log.replaceChildren(empty);
    empty.hidden = false;
    input.value = "";
    resize();
    input.focus();
  });

  function resize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  function submit() {
    const question = input.value.trim();
    if (!question || asking) return;
    input.value = "";
    resize();
    ask(question);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("input", resize);
  input.addEventListener("keydown", (event) => {
    // isComposing: Enter also confirms a Korean, Chinese or Japanese input method's word.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.focus();
})();
