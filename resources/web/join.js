/* The victim's page: consent, camera help, waiting room, call, chat, quick exit.
 *
 * Plain JavaScript, no build step, no third-party code. Signalling is the
 * rendezvous protocol (docs/rendezvous.md) over /ws/victim; the page's own
 * behaviour is described in docs/victim-page.md. Every user-facing string is
 * in strings.js.
 *
 * Who offers: the officer's app (docs/call-engine.md). The page answers every
 * offer; an offer with `iceRestart` (the app rebuilt its connection, with new
 * certificates) gets a fresh RTCPeerConnection. Chat goes over the data
 * channel "evr" once the officer's app has opened it, else over signalling.
 *
 * Before any offer the page commits to its own DTLS certificate: `commit` with
 * the SHA-256 of its fingerprint, and every new RTCPeerConnection uses that
 * certificate (docs/victim-page.md, "Commitment").
 */
"use strict";

(function () {
  var STRINGS = window.EVR_STRINGS || {};
  var LANGS = Object.keys(STRINGS);
  var DEFAULT_LANG = LANGS.indexOf("en") >= 0 ? "en" : LANGS[0];
  var LANG_KEY = "evr.lang"; // sessionStorage only: gone when the tab closes
  var GATHER_WAIT_MS = 1500; // send the SDP with its candidates, or after this long
  var MAX_CHANNEL_MESSAGE = 262144; // characters: a statement to sign is at most 200 KB of JSON
  // The signature's bounds: the officer's app refuses more (domain/phone_signing.py).
  var SIG_MAX_POINTS = 5000, SIG_MAX_STROKES = 200, SIG_MIN_POINTS = 10;
  // This page is served at /j/<token>. Opening it claims nothing (SMS previews
  // and link scanners fetch it too): agreeing POSTs <path>/claim, which binds
  // the link to this phone (an HttpOnly cookie); quick exit leaves through
  // <path>/exit, which locks the link, clears this site's data and redirects
  // to a neutral page on another site.
  var LINK_PATH = /^\/j\/[A-Za-z0-9_-]{16,128}$/.test(location.pathname) ? location.pathname : null;

  var VIDEO = {
    facingMode: "user",
    width: { ideal: 1280, max: 1280 },
    height: { ideal: 720, max: 720 },
    frameRate: { ideal: 30, max: 30 }
  };
  var AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

  var state = {
    lang: DEFAULT_LANG,
    screen: null,
    site: null, // /web/site.json: the force's name per language
    ws: null,
    wsOpen: false,
    reconnectDelay: 1000,
    reconnectTimer: null,
    officerPresent: false,
    officerName: null,
    force: null,
    iceServers: [],
    stream: null,
    pc: null,
    commitment: null, // Promise of {cert, hash}: the certificate for the next new connection
    committed: null, // that promise's value once ready (its hash has been or will be sent)
    offerSeq: 0,
    channel: null, // the officer's data channel "evr"
    pendingIce: [],
    descSent: false,
    inCall: false,
    finished: false, // ended, refused or replaced: no reconnecting
    quitting: false,
    muted: false,
    cameraOff: false,
    chatOpen: false,
    lastChatAt: 0,
    wakeLock: null,
    flagTimer: null,
    review: null, // the statement the officer sent to read and sign: {id, text, pages, declaration, kind}
    sig: { strokes: [], width: 0, height: 0, t0: 0, pointer: null, points: 0 }
  };

  function $(id) { return document.getElementById(id); }

  // --- strings ---------------------------------------------------------------

  function t(key, vars) {
    var table = STRINGS[state.lang] || {};
    var text = table[key];
    if (text === undefined) text = (STRINGS[DEFAULT_LANG] || {})[key];
    if (text === undefined) return key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, function (all, name) {
        return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : all;
      });
    }
    return text;
  }

  /* Bind an element's text (or aria-label) to a string key, so that a later
   * language switch re-renders it. */
  function setText(el, key, vars) {
    el.setAttribute("data-i18n", key);
    if (vars) el.setAttribute("data-i18n-vars", JSON.stringify(vars));
    else el.removeAttribute("data-i18n-vars");
    el.textContent = t(key, vars);
  }

  function setAria(el, key) {
    el.setAttribute("data-i18n-aria", key);
    el.setAttribute("aria-label", t(key));
  }

  function varsOf(el) {
    var raw = el.getAttribute("data-i18n-vars");
    if (!raw) return null;
    try { return JSON.parse(raw); } catch (e) { return null; }
  }

  function pickLanguage() {
    try {
      var kept = sessionStorage.getItem(LANG_KEY);
      if (kept && STRINGS[kept]) return kept;
    } catch (e) { /* storage blocked: fine */ }
    var wanted = new URLSearchParams(location.search).get("lang");
    if (wanted && STRINGS[wanted]) return wanted;
    var prefs = navigator.languages || [navigator.language || ""];
    for (var i = 0; i < prefs.length; i++) {
      var base = String(prefs[i]).toLowerCase().split("-")[0];
      if (STRINGS[base]) return base;
    }
    return DEFAULT_LANG;
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t("page_title");
    var els = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < els.length; i++) {
      els[i].textContent = t(els[i].getAttribute("data-i18n"), varsOf(els[i]));
    }
    var labelled = document.querySelectorAll("[data-i18n-aria]");
    for (var j = 0; j < labelled.length; j++) {
      labelled[j].setAttribute("aria-label", t(labelled[j].getAttribute("data-i18n-aria")));
    }
    renderLanguageButtons();
    renderWho();
  }

  function setLanguage(lang) {
    if (!STRINGS[lang]) return;
    state.lang = lang;
    try { sessionStorage.setItem(LANG_KEY, lang); } catch (e) { /* fine */ }
    applyLanguage();
    if (state.wsOpen && state.officerPresent) send({ type: "hello", lang: lang });
  }

  /* One button per other language, each written in its own language. */
  function renderLanguageButtons() {
    var box = $("langs");
    box.textContent = "";
    LANGS.forEach(function (lang) {
      if (lang === state.lang) return;
      var b = document.createElement("button");
      b.type = "button";
      b.className = "lang";
      b.lang = lang;
      b.setAttribute("data-lang", lang);
      b.textContent = STRINGS[lang].lang_name;
      b.setAttribute("aria-label", STRINGS[lang].switch_to);
      b.addEventListener("click", function () { setLanguage(lang); });
      box.appendChild(b);
    });
  }

  function forceName() {
    var f = state.force || (state.site && state.site.force);
    if (!f) return null;
    if (typeof f === "string") return f;
    return f[state.lang] || f[DEFAULT_LANG] || null;
  }

  function renderWho() {
    var force = forceName();
    if (force) setText($("consent-who"), "consent_who_force", { force: force });
    else setText($("consent-who"), "consent_who");
    var who = $("wait-officer");
    if (state.officerName) {
      setText(who, "wait_officer_name", { officer: state.officerName });
      who.hidden = false;
    } else {
      who.hidden = true;
    }
  }

  // --- screens ---------------------------------------------------------------

  function show(name) {
    var screens = document.querySelectorAll(".screen");
    for (var i = 0; i < screens.length; i++) screens[i].hidden = true;
    var screen = $("screen-" + name);
    screen.hidden = false;
    state.screen = name;
    document.body.setAttribute("data-screen", name);
    var chat = $("chat");
    if (name === "waiting") {
      $("chat-slot-waiting").appendChild(chat);
      chat.hidden = false;
    } else if (name === "call") {
      $("chat-slot-call").appendChild(chat);
      chat.hidden = false;
      $("chat-slot-call").hidden = !state.chatOpen;
    } else {
      chat.hidden = true;
    }
    if (name !== "call") document.body.classList.remove("chat-open");
    else document.body.classList.toggle("chat-open", state.chatOpen);
    $("flag-bar").hidden = !(name === "waiting" || name === "call" || name === "ended" || name === "review");
    if (name === "review") sizeSignature();
    var heading = screen.querySelector("h1");
    if (heading) heading.focus({ preventScroll: false });
    window.scrollTo(0, 0);
  }

  function problem(el, key) {
    if (!key) { el.hidden = true; el.textContent = ""; el.removeAttribute("data-i18n"); return; }
    setText(el, key);
    el.hidden = false;
  }

  // --- camera and microphone -----------------------------------------------------

  function platform() {
    var ua = navigator.userAgent || "";
    if (/iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return "iphone";
    if (/Android/.test(ua)) return "android";
    return "other";
  }

  function getMedia() {
    var md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) return Promise.reject(new Error("no-media-devices"));
    return md.getUserMedia({ audio: AUDIO, video: VIDEO }).catch(function (err) {
      // A camera that cannot meet the 720p cap exactly: take what it gives, capped by ideal.
      if (err && err.name === "OverconstrainedError") {
        return md.getUserMedia({ audio: AUDIO, video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } } });
      }
      // No camera: carry on with the microphone alone.
      if (err && err.name === "NotFoundError") return md.getUserMedia({ audio: AUDIO, video: false });
      throw err;
    });
  }

  function askMedia() {
    var btn = $("perm-start");
    btn.disabled = true;
    setText(btn, "perm_working");
    problem($("perm-problem"), null);
    getMedia().then(function (stream) {
      state.stream = stream;
      state.muted = false;
      state.cameraOff = false;
      enterWaiting();
    }, function (err) {
      var name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        problem($("perm-problem"), "perm_denied");
        var which = platform();
        $("help-android").open = which === "android" || which === "other";
        $("help-iphone").open = which === "iphone" || which === "other";
      } else if (name === "NotFoundError") {
        problem($("perm-problem"), "perm_missing");
      } else {
        problem($("perm-problem"), "perm_failed");
      }
      setText(btn, "perm_retry");
    }).then(function () {
      btn.disabled = false;
    });
  }

  function stopMedia() {
    if (state.stream) {
      state.stream.getTracks().forEach(function (track) { track.stop(); });
      state.stream = null;
    }
    $("preview").srcObject = null;
    $("self-video").srcObject = null;
  }

  function hasVideo() {
    return !!(state.stream && state.stream.getVideoTracks().length);
  }

  // --- the waiting room and the socket -----------------------------------------

  function enterWaiting() {
    state.finished = false;
    show("waiting");
    var preview = $("preview");
    if (hasVideo()) {
      preview.srcObject = state.stream;
      preview.hidden = false;
      preview.play().catch(function () { /* muted preview: autoplay is allowed */ });
    } else {
      preview.hidden = true;
    }
    setText($("wait-status"), "wait_connecting");
    keepAwake();
    commitment().catch(function () { /* no Web Crypto (insecure context): no call can start */ });
    connect();
  }

  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/victim";
  }

  function connect() {
    if (state.ws || state.finished || state.quitting) return;
    var ws;
    try { ws = new WebSocket(socketUrl()); } catch (e) { scheduleReconnect(); return; }
    state.ws = ws;
    ws.onopen = function () {
      state.wsOpen = true;
      state.reconnectDelay = 1000;
    };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && typeof msg.type === "string") onMessage(msg);
    };
    ws.onclose = function (ev) {
      if (state.ws === ws) { state.ws = null; state.wsOpen = false; }
      onSocketClosed(ev.code, ev.reason);
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function send(msg) {
    if (!state.ws || !state.wsOpen) return false;
    try { state.ws.send(JSON.stringify(msg)); return true; } catch (e) { return false; }
  }

  function scheduleReconnect() {
    if (state.finished || state.quitting || state.reconnectTimer) return;
    var delay = state.reconnectDelay;
    state.reconnectDelay = Math.min(10000, delay * 2);
    state.reconnectTimer = setTimeout(function () {
      state.reconnectTimer = null;
      connect();
    }, delay);
  }

  function onSocketClosed(code) {
    if (state.quitting || state.finished) return;
    if (code === 4403) { finish("refused"); return; }
    if (code === 4001) { finish("replaced"); return; }
    state.officerPresent = false;
    if (state.screen === "waiting") setText($("wait-status"), "wait_reconnecting");
    // In a call, media may still flow peer to peer: keep it and reconnect signalling.
    scheduleReconnect();
  }

  function renderWaitStatus() {
    setText($("wait-status"), state.officerPresent ? "wait_officer_here" : "wait_officer_away");
  }

  function cleanIceServers(list) {
    if (!Array.isArray(list)) return [];
    return list.filter(function (s) {
      if (!s || typeof s !== "object") return false;
      var urls = Array.isArray(s.urls) ? s.urls : [s.urls];
      return urls.length > 0 && urls.every(function (u) { return typeof u === "string" && /^(stun|turn|turns):/.test(u); });
    }).map(function (s) {
      var out = { urls: s.urls };
      if (typeof s.username === "string") out.username = s.username;
      if (typeof s.credential === "string") out.credential = s.credential;
      return out;
    });
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "waiting":
        state.officerPresent = msg.officer === true;
        if (Array.isArray(msg.iceServers)) state.iceServers = cleanIceServers(msg.iceServers);
        if (typeof msg.officer_name === "string") state.officerName = msg.officer_name.slice(0, 120);
        if (typeof msg.force === "string" || (msg.force && typeof msg.force === "object")) state.force = msg.force;
        renderWho();
        if (state.screen === "waiting") renderWaitStatus();
        sendCommit(); // a new socket: the rendezvous keeps it for the officer
        if (state.officerPresent) send({ type: "hello", lang: state.lang });
        break;
      case "officer_joined":
        state.officerPresent = true;
        if (state.screen === "waiting") renderWaitStatus();
        if (state.screen === "call") setText($("call-status"), "call_starting");
        sendCommit();
        send({ type: "hello", lang: state.lang });
        break;
      case "officer_left":
        state.officerPresent = false;
        if (state.screen === "waiting") renderWaitStatus();
        if (state.screen === "call") setText($("call-status"), "call_officer_lost");
        break;
      case "hello":
        state.officerPresent = true;
        break;
      case "offer":
        if (typeof msg.sdp === "string") onOffer(msg.sdp, msg.iceRestart === true);
        break;
      case "answer":
        if (typeof msg.sdp === "string") onAnswer(msg.sdp);
        break;
      case "ice":
        onRemoteIce(msg);
        break;
      case "chat":
        if (typeof msg.text === "string") addChat("officer", msg.text);
        break;
      case "bye":
        finish("ended");
        break;
      case "refused":
        finish("refused");
        break;
      case "error":
        if (msg.code === "officer-absent" && Date.now() - state.lastChatAt < 5000) {
          problem($("chat-problem"), "chat_not_sent");
        }
        break;
      default:
        break; // newer servers may say more: ignore what we do not know
    }
  }

  // --- the call ------------------------------------------------------------------

  /* A new connection with the committed certificate. onOffer has torn the old
   * one down already, so ICE that arrived since that offer stays queued. */
  function newPeer(cert) {
    if (state.pc) teardownPeer();
    var pc = new RTCPeerConnection({ iceServers: state.iceServers, certificates: [cert] });
    state.pc = pc;
    state.descSent = false;
    pc.onicecandidate = function (ev) {
      if (state.pc !== pc || !state.descSent) return; // earlier ones are in the SDP already
      var c = ev.candidate;
      if (c && c.candidate) {
        send({ type: "ice", candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex,
               usernameFragment: c.usernameFragment || null });
      } else if (!c) {
        send({ type: "ice", candidate: null });
      }
    };
    pc.ontrack = function (ev) {
      if (state.pc !== pc) return;
      var video = $("remote-video");
      var stream = ev.streams && ev.streams[0];
      if (!stream) {
        stream = video.srcObject instanceof MediaStream ? video.srcObject : new MediaStream();
        stream.addTrack(ev.track);
      }
      if (video.srcObject !== stream) video.srcObject = stream;
      playRemote();
    };
    pc.ondatachannel = function (ev) {
      if (state.pc !== pc || ev.channel.label !== "evr") return;
      var ch = ev.channel;
      state.channel = ch;
      // An open data channel means DTLS is up: show the code now too (with some
      // peers connectionState lags or skips "connected").
      ch.onopen = function () { if (state.pc === pc) showVerificationCode(pc); };
      if (ch.readyState === "open") showVerificationCode(pc);
      ch.onmessage = function (m) {
        // A statement to sign is up to 200 KB (docs/victim-page.md, "Signing on the phone").
        if (typeof m.data !== "string" || m.data.length > MAX_CHANNEL_MESSAGE) return;
        var data;
        try { data = JSON.parse(m.data); } catch (e) { return; }
        if (!data || typeof data !== "object") return;
        if (data.type === "chat" && typeof data.text === "string" && data.text.trim()) {
          addChat("officer", data.text.slice(0, 4000));
        } else if (data.type === "statement_review") {
          onReview(data);
        } else if (data.type === "statement_withdrawn" && state.review && data.id === state.review.id) {
          closeReview("review_withdrawn");
        } else if (data.type === "recording" && (data.state === "on" || data.state === "off")) {
          // The officer's app says when the recorder is actually running (not before
          // it starts, not after it stopped): the victim sees the truth.
          $("rec-indicator").hidden = data.state !== "on";
        }
      };
    };
    pc.onconnectionstatechange = function () {
      if (state.pc !== pc) return;
      var s = pc.connectionState;
      if (s === "connected") {
        setText($("call-status"), "call_connected");
        setTimeout(function () {
          if (state.pc === pc && pc.connectionState === "connected") $("call-status").textContent = "";
        }, 4000);
        showVerificationCode(pc);
        preferResolution(pc);
      } else if (s === "disconnected") {
        setText($("call-status"), "call_reconnecting");
        // Give it a few seconds to recover by itself, then ask for a restart.
        setTimeout(function () {
          if (state.pc === pc && pc.connectionState === "disconnected") askRestart();
        }, 3000);
      } else if (s === "failed") {
        setText($("call-status"), "call_reconnecting");
        askRestart(); // the officer's app answers with a fresh offer
      }
    };
    var tracks = state.stream ? state.stream.getTracks() : [];
    tracks.forEach(function (track) { pc.addTrack(track, state.stream); });
    if (!state.stream || !state.stream.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
    if (!hasVideo()) pc.addTransceiver("video", { direction: "recvonly" });
    preferCodecs(pc);
    return pc;
  }

  /* VP8 first, then H.264 constrained baseline, then everything else the browser
   * can do, in its own order: a reordering, nothing is removed. */
  function preferCodecs(pc) {
    if (!window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
    var caps = RTCRtpReceiver.getCapabilities("video");
    if (!caps || !caps.codecs) return;
    function rank(c) {
      var mime = (c.mimeType || "").toLowerCase();
      var fmtp = (c.sdpFmtpLine || "").toLowerCase();
      if (mime === "video/vp8") return 0;
      if (mime === "video/h264" && fmtp.indexOf("profile-level-id=42e01f") >= 0 &&
          fmtp.indexOf("packetization-mode=1") >= 0) return 1;
      return 2;
    }
    var codecs = caps.codecs.map(function (c, i) { return { c: c, i: i }; })
      .sort(function (a, b) { return rank(a.c) - rank(b.c) || a.i - b.i; })
      .map(function (x) { return x.c; });
    pc.getTransceivers().forEach(function (tr) {
      var kind = tr.receiver && tr.receiver.track && tr.receiver.track.kind;
      if (kind === "video" && tr.setCodecPreferences) {
        try { tr.setCodecPreferences(codecs); } catch (e) { /* keep the browser's order */ }
      }
    });
  }

  /* Chromium lowers a 720p send to 360p for the first seconds unless told. */
  function preferResolution(pc) {
    pc.getSenders().forEach(function (sender) {
      if (!sender.track || sender.track.kind !== "video" || !sender.getParameters) return;
      try {
        var p = sender.getParameters();
        if (p.degradationPreference === "maintain-resolution") return;
        p.degradationPreference = "maintain-resolution";
        var done = sender.setParameters(p);
        if (done && done.catch) done.catch(function () { /* not supported: fine */ });
      } catch (e) { /* not supported: fine */ }
    });
  }

  function gathered(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var timer = setTimeout(finish, GATHER_WAIT_MS);
      function check() { if (pc.iceGatheringState === "complete") finish(); }
      function finish() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function enterCall() {
    if (state.screen !== "call") {
      state.inCall = true;
      show("call");
      var self = $("self-video");
      if (hasVideo()) {
        self.srcObject = state.stream;
        self.hidden = false;
        self.play().catch(function () {});
      } else {
        self.hidden = true;
      }
      renderCallControls();
      setText($("call-status"), "call_starting");
      setText($("verification-code"), "code_pending");
    }
  }

  function onOffer(sdp, iceRestart) {
    if (state.finished || state.quitting) return;
    if (sdpFingerprint(sdp) === FINGERPRINT_MISMATCH) {
      refuseInterference();
      return;
    }
    enterCall();
    var seq = ++state.offerSeq;
    var pc = state.pc;
    var changed = pc && pc.remoteDescription &&
      sdpFingerprint(pc._evrRemoteSdp || pc.remoteDescription.sdp) !== sdpFingerprint(sdp);
    var ready;
    if (!pc || iceRestart || changed) {
      // New certificates: a new connection (and a new code), made with the
      // certificate this page committed to before the offer was sent.
      teardownPeer();
      setText($("verification-code"), "code_pending");
      ready = commitment().then(function (c) {
        if (seq !== state.offerSeq || state.finished || state.quitting) throw new Error("superseded");
        var fresh = newPeer(c.cert);
        fresh._evrCommitment = c;
        return fresh;
      });
    } else if (pc.signalingState === "have-local-offer") {
      ready = pc.setLocalDescription({ type: "rollback" }).then(function () { return pc; }); // the officer's offer wins
    } else {
      ready = Promise.resolve(pc);
    }
    state.descSent = false;
    var current = null;
    ready.then(function (p) {
      current = p;
      // The code uses the offer as the officer sent it: Chromium re-writes a remote
      // description with one fingerprint (the strongest), the officer's app
      // reads its own SHA-256 one.
      p._evrRemoteSdp = sdp;
      return p.setRemoteDescription({ type: "offer", sdp: sdp });
    }).then(function () {
      flushIce(current);
      return current.createAnswer();
    }).then(function (answer) {
      return current.setLocalDescription(answer);
    }).then(function () {
      preferResolution(current);
      return gathered(current);
    }).then(function () {
      if (state.pc !== current) return;
      send({ type: "answer", sdp: current.localDescription.sdp });
      state.descSent = true;
      if (current._evrCommitment) renewCommitment(current._evrCommitment);
    }).catch(function () {
      if (seq === state.offerSeq && (!current || state.pc === current)) {
        setText($("call-status"), "call_reconnecting");
      }
    });
  }

  function onAnswer(sdp) {
    var pc = state.pc;
    if (!pc || pc.signalingState !== "have-local-offer") return;
    pc.setRemoteDescription({ type: "answer", sdp: sdp }).then(function () {
      flushIce(pc);
      preferResolution(pc);
    }).catch(function () {
      if (state.pc === pc) setText($("call-status"), "call_reconnecting");
    });
  }

  function onRemoteIce(msg) {
    if (typeof msg.candidate !== "string" || !msg.candidate) return; // end of candidates: nothing to do
    var cand = { candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex };
    if (msg.usernameFragment) cand.usernameFragment = msg.usernameFragment;
    if (cand.sdpMid == null && cand.sdpMLineIndex == null) cand.sdpMLineIndex = 0;
    var pc = state.pc;
    if (!pc || !pc.remoteDescription) { state.pendingIce.push(cand); return; }
    pc.addIceCandidate(cand).catch(function () {});
  }

  function flushIce(pc) {
    var list = state.pendingIce;
    state.pendingIce = [];
    list.forEach(function (cand) { pc.addIceCandidate(cand).catch(function () {}); });
  }

  function playRemote() {
    var video = $("remote-video");
    var p = video.play();
    if (p && p.catch) {
      p.then(function () { $("tap-to-hear").hidden = true; }, function () { $("tap-to-hear").hidden = false; });
    }
  }

  function teardownPeer() {
    var pc = state.pc;
    state.pc = null;
    state.pendingIce = [];
    $("rec-indicator").hidden = true; // the next connection's channel says it again
    state.descSent = false;
    if (state.channel) {
      state.channel.onmessage = null;
      try { state.channel.close(); } catch (e) { /* closed already */ }
      state.channel = null;
    }
    if (pc) {
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.ondatachannel = null;
      try { pc.close(); } catch (e) { /* closed already */ }
    }
    var remote = $("remote-video");
    if (remote.srcObject) {
      remote.srcObject.getTracks().forEach(function (track) { track.stop(); });
      remote.srcObject = null;
    }
  }

  function renderCallControls() {
    var mute = $("btn-mute");
    setText(mute, state.muted ? "call_unmute" : "call_mute");
    setAria(mute, state.muted ? "call_unmute_label" : "call_mute_label");
    mute.setAttribute("aria-pressed", String(state.muted));
    mute.disabled = !(state.stream && state.stream.getAudioTracks().length);
    var cam = $("btn-camera");
    setText(cam, state.cameraOff ? "call_camera_on" : "call_camera_off");
    setAria(cam, state.cameraOff ? "call_camera_on_label" : "call_camera_off_label");
    cam.setAttribute("aria-pressed", String(state.cameraOff));
    cam.disabled = !hasVideo();
    $("btn-chat").setAttribute("aria-expanded", String(state.chatOpen));
  }

  function toggleMute() {
    state.muted = !state.muted;
    if (state.stream) state.stream.getAudioTracks().forEach(function (tr) { tr.enabled = !state.muted; });
    renderCallControls();
  }

  function toggleCamera() {
    state.cameraOff = !state.cameraOff;
    if (state.stream) state.stream.getVideoTracks().forEach(function (tr) { tr.enabled = !state.cameraOff; });
    $("self-video").classList.toggle("off", state.cameraOff);
    renderCallControls();
  }

  function toggleChat() {
    state.chatOpen = !state.chatOpen;
    $("chat-slot-call").hidden = !state.chatOpen;
    document.body.classList.toggle("chat-open", state.chatOpen);
    if (state.chatOpen) {
      $("chat-badge").hidden = true;
      $("chat-input").focus();
    }
    renderCallControls();
  }

  function endCall() {
    send({ type: "bye", reason: "victim-ended" }); // the server closes the socket after relaying it
    state.finished = true;
    teardownPeer();
    stopMedia();
    releaseWake();
    showEnded("left_title", "left_body", true);
  }

  // --- verification code -----------------------------------------------------------

  /* The SHA-256 value of the SDP's one fingerprint set, upper case; null when
   * there is none; FINGERPRINT_MISMATCH when its m-sections do not all carry
   * the same single set with exactly one sha-256 (the rule of
   * evr_desktop/domain/verification.py, fingerprint_set). Chromium checks the
   * DTLS certificate against the strongest hash it is given, and a rendezvous
   * in the middle could put its own certificate's sha-384 in one m-section and
   * the honest sha-256 in another: such an SDP is refused. */
  var FINGERPRINT_MISMATCH = "mismatch";
  function fingerprintsOf(text) {
    var out = [];
    var lines = text.split(/\r?\n/);
    for (var i = 0; i < lines.length; i++) {
      var m = /^a=fingerprint:(\S+)[ \t]+([0-9A-Fa-f:]+)[ \t]*$/.exec(lines[i]);
      if (m) out.push(m[1].toLowerCase() + " " + m[2].toUpperCase());
    }
    return out.sort().join("|");
  }
  function sdpFingerprint(sdp) {
    var parts = String(sdp || "").split(/\r?\n(?=m=)/);
    var session = fingerprintsOf(parts[0]);
    var sets = [];
    for (var i = 1; i < parts.length; i++) sets.push(fingerprintsOf(parts[i]) || session);
    if (!sets.length) sets.push(session);
    if (!sets[0]) return null;
    for (var j = 0; j < sets.length; j++) {
      if (sets[j] !== sets[0] || (session && session !== sets[0])) return FINGERPRINT_MISMATCH;
    }
    var sha = sets[0].split("|").filter(function (f) { return f.indexOf("sha-256 ") === 0; });
    return sha.length === 1 ? sha[0].slice(8) : FINGERPRINT_MISMATCH;
  }

  /* The SHA-256 fingerprint of the certificate the DTLS handshake actually used
   * (RTCDtlsTransport.getRemoteCertificates), or null where the browser does
   * not offer it (then the SDP's, checked above, is all there is). */
  function dtlsPeerFingerprint(pc) {
    var senders = pc.getSenders ? pc.getSenders() : [];
    var transport = null;
    for (var i = 0; i < senders.length && !transport; i++) transport = senders[i].transport;
    if (!transport && pc.sctp) transport = pc.sctp.transport;
    if (!transport || !transport.getRemoteCertificates || !window.crypto || !crypto.subtle) {
      return Promise.resolve(null);
    }
    var certs = transport.getRemoteCertificates();
    if (!certs || !certs.length) return Promise.resolve(null);
    return crypto.subtle.digest("SHA-256", certs[0]).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (x) {
        return (x + 256).toString(16).slice(1).toUpperCase();
      }).join(":");
    });
  }

  /* Someone in the signalling changed the call's keys: stop, tell the officer
   * (a bye with the reason) and say so plainly. */
  function refuseInterference() {
    send({ type: "bye", reason: "fingerprint-mismatch" });
    state.finished = true;
    teardownPeer();
    stopMedia();
    releaseWake();
    showEnded("interference_title", "interference_body", false);
  }

  /* Six digits both sides can read to each other (the officer's app does the
   * same: evr_desktop/domain/verification.py, docs/victim-page.md): SHA-256 over
   * the two fingerprints sorted and joined by "\n"; the first 20 bits of the
   * digest, big-endian; decimal, zero-padded to 6 digits. Resolves to null when
   * a fingerprint is missing or Web Crypto is unavailable (insecure context). */
  function verificationCode(localSdp, remoteSdp) {
    return codeFromFingerprints(sdpFingerprint(localSdp), sdpFingerprint(remoteSdp));
  }

  function codeFromFingerprints(a, b) {
    if (!a || !b || a === FINGERPRINT_MISMATCH || b === FINGERPRINT_MISMATCH || !window.crypto || !crypto.subtle) {
      return Promise.resolve(null);
    }
    var input = new TextEncoder().encode([a, b].sort().join("\n"));
    return crypto.subtle.digest("SHA-256", input).then(function (buf) {
      var d = new Uint8Array(buf);
      // Kept to six digits (the 20-bit value can reach 1048575): same as verification.py.
      var s = String(((d[0] << 12) | (d[1] << 4) | (d[2] >> 4)) % 1000000);
      while (s.length < 6) s = "0" + s;
      return s;
    });
  }

  /* The code from this page's own fingerprint and the officer's certificate as
   * DTLS used it, which must be the one the offer announced. */
  function showVerificationCode(pc) {
    if (!pc.localDescription || !pc.remoteDescription) return;
    var announced = sdpFingerprint(pc._evrRemoteSdp || pc.remoteDescription.sdp);
    dtlsPeerFingerprint(pc).then(function (actual) {
      if (state.pc !== pc) return null;
      if (actual && actual !== announced) {
        refuseInterference();
        return null;
      }
      state.codeFrom = actual ? "dtls" : "sdp";
      return codeFromFingerprints(sdpFingerprint(pc.localDescription.sdp), actual || announced);
    }).then(function (code) {
      if (state.pc !== pc || !code) return;
      var el = $("verification-code");
      el.removeAttribute("data-i18n");
      el.textContent = code.slice(0, 3) + " " + code.slice(3);
      el.setAttribute("data-code", code);
    });
  }

  // --- commitment to this page's DTLS certificate ------------------------------------

  /* Why: the six digits alone do not stop someone who controls the signalling
   * (docs/victim-page.md, "Commitment"). So the page makes the certificate for
   * its next connection up front and sends the SHA-256 of its fingerprint
   * before the officer's offer is sent; the officer's app refuses an answer
   * whose fingerprint does not match. Made once, sent as soon as it is ready and
   * again on every new socket, replaced once an answer has revealed it. */

  function normaliseFingerprint(value) {
    var fp = String(value || "").trim().toUpperCase();
    return /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(fp) ? fp : null;
  }

  function sha256Hex(text) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (x) {
        return (x + 256).toString(16).slice(1);
      }).join("");
    });
  }

  /* Lowercase hex SHA-256 of the normalised fingerprint: the `commit` hash. */
  function commitHash(fingerprint) {
    var fp = normaliseFingerprint(fingerprint);
    if (!fp || !window.crypto || !crypto.subtle) return Promise.reject(new Error("no-fingerprint"));
    return sha256Hex(fp);
  }

  function certificateFingerprint(cert) {
    var list = cert.getFingerprints ? cert.getFingerprints() : [];
    for (var i = 0; i < list.length; i++) {
      if (String(list[i].algorithm).toLowerCase() === "sha-256") return Promise.resolve(list[i].value);
    }
    // A browser without getFingerprints: read it from an offer made with the certificate.
    var probe = new RTCPeerConnection({ certificates: [cert] });
    probe.createDataChannel("probe");
    return probe.createOffer().then(function (offer) {
      probe.close();
      return sdpFingerprint(offer.sdp);
    }, function (err) {
      probe.close();
      throw err;
    });
  }

  function commitment() {
    if (state.commitment) return state.commitment;
    if (!window.RTCPeerConnection || !RTCPeerConnection.generateCertificate) {
      return Promise.reject(new Error("no-certificates"));
    }
    var p = RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256" }).then(function (cert) {
      return certificateFingerprint(cert).then(commitHash).then(function (hash) {
        return { cert: cert, hash: hash };
      });
    });
    state.commitment = p;
    p.then(function (c) {
      if (state.commitment !== p) return;
      state.committed = c;
      sendCommit();
    }, function () {
      if (state.commitment === p) state.commitment = null; // tried again at the next offer
    });
    return p;
  }

  function sendCommit() {
    if (state.committed) send({ type: "commit", hash: state.committed.hash });
  }

  /* An answer carried this certificate's fingerprint, so it is public: the next
   * new connection needs a new certificate, committed to now. */
  function renewCommitment(c) {
    if (state.committed !== c) return;
    state.commitment = null;
    state.committed = null;
    commitment().catch(function () {});
  }

  // --- chat ------------------------------------------------------------------------

  function addChat(who, text) {
    var li = document.createElement("li");
    li.className = who === "officer" ? "from-officer" : "from-me";
    var label = document.createElement("span");
    label.className = "who";
    setText(label, who === "officer" ? "chat_officer" : "chat_you");
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    li.appendChild(label);
    li.appendChild(body);
    var log = $("chat-log");
    log.appendChild(li);
    while (log.children.length > 200) log.removeChild(log.firstChild);
    log.scrollTop = log.scrollHeight; // the log scrolls, never the page
    if (who === "officer" && state.screen === "call" && !state.chatOpen) {
      $("chat-badge").hidden = false;
      setText($("call-status"), "chat_new");
    }
  }

  function chatId() {
    var b = new Uint8Array(8);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }

  function sendChat(ev) {
    ev.preventDefault();
    var input = $("chat-input");
    var text = input.value.trim();
    if (!text) return;
    problem($("chat-problem"), null);
    var msg = { type: "chat", text: text.slice(0, 4000), id: chatId() };
    var ch = state.channel;
    if (ch && ch.readyState === "open") {
      ch.send(JSON.stringify(msg));
    } else if (!state.officerPresent || !send(msg)) {
      problem($("chat-problem"), "chat_not_sent");
      return;
    }
    state.lastChatAt = Date.now();
    addChat("me", text);
    input.value = "";
  }

  // --- the statement to read and sign ------------------------------------------------------
  // The officer's app sends {type: "statement_review", id, text, pages, declaration, kind}
  // over the data channel. The page shows the text exactly (textContent, pre-wrap), the
  // page count and the declaration; the victim ticks that they make the declaration and
  // draws a signature with a finger (pointer events: touch, pen or mouse). Sign and send
  // returns {type: "statement_signed", id, sha256, strokes: [[[x, y, t_ms], ...], ...],
  // width, height}: sha256 over the UTF-8 of the text as it is in the page, strokes in
  // CSS px of the canvas, t in ms from the first touch. Or {type: "statement_declined", id}.
  // The call goes on underneath: the video and the sound are not touched.

  function validReview(d) {
    return typeof d.id === "string" && /^[0-9a-f]{16,64}$/.test(d.id) && typeof d.text === "string" &&
      typeof d.pages === "number" && d.pages === Math.floor(d.pages) && d.pages >= 1 && d.pages <= 999 &&
      typeof d.declaration === "string" && (d.kind === "witness" || d.kind === "vps");
  }

  function onReview(d) {
    if (!validReview(d) || !state.inCall) return;
    state.review = { id: d.id, text: d.text, pages: d.pages, declaration: d.declaration, kind: d.kind };
    setText($("review-title"), d.kind === "vps" ? "review_title_vps" : "review_title");
    setText($("review-pages"), "review_pages", { pages: d.pages });
    $("review-text").textContent = d.text;
    $("review-text").scrollTop = 0;
    $("review-declaration").textContent = d.declaration;
    $("review-confirm").checked = false;
    problem($("review-problem"), null);
    $("btn-review").hidden = false;
    clearSignature();
    show("review");
  }

  function closeReview(statusKey) {
    state.review = null;
    $("btn-review").hidden = true;
    clearSignature();
    if (state.screen === "review") show("call");
    if (statusKey && state.screen === "call") setText($("call-status"), statusKey);
  }

  function sizeSignature() {
    var canvas = $("signature");
    var rect = canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    var ratio = window.devicePixelRatio || 1;
    var w = Math.round(rect.width * ratio), h = Math.round(rect.height * ratio);
    // A new size (the phone turned, the text was zoomed): the strokes no longer fit it.
    if (state.sig.points && (Math.abs(rect.width - state.sig.width) > 1 || Math.abs(rect.height - state.sig.height) > 1)) {
      clearSignature();
    }
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; redrawSignature(); }
  }

  function clearSignature() {
    state.sig = { strokes: [], width: 0, height: 0, t0: 0, pointer: null, points: 0 };
    var canvas = $("signature");
    var ctx = canvas.getContext && canvas.getContext("2d");
    if (ctx) ctx.clearRect(0, 0, canvas.width, canvas.height);
    renderSignButton();
  }

  function redrawSignature() {
    var canvas = $("signature");
    var ctx = canvas.getContext && canvas.getContext("2d");
    if (!ctx) return;
    var ratio = canvas.width / (canvas.getBoundingClientRect().width || canvas.width);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.strokeStyle = "#0b1f4b";
    ctx.fillStyle = "#0b1f4b";
    ctx.lineWidth = 2.4;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    state.sig.strokes.forEach(function (stroke) {
      ctx.beginPath();
      ctx.moveTo(stroke[0][0], stroke[0][1]);
      if (stroke.length === 1) ctx.arc(stroke[0][0], stroke[0][1], 1.2, 0, 2 * Math.PI);
      for (var i = 1; i < stroke.length; i++) ctx.lineTo(stroke[i][0], stroke[i][1]);
      if (stroke.length === 1) ctx.fill(); else ctx.stroke();
    });
  }

  function sigPoint(ev) {
    var rect = $("signature").getBoundingClientRect();
    var x = Math.min(Math.max(ev.clientX - rect.left, 0), rect.width);
    var y = Math.min(Math.max(ev.clientY - rect.top, 0), rect.height);
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10, Math.max(0, Math.round(ev.timeStamp - state.sig.t0))];
  }

  function sigDown(ev) {
    if (!state.review || state.sig.pointer !== null) return;
    if (ev.pointerType === "mouse" && ev.button !== 0) return;
    if (state.sig.points >= SIG_MAX_POINTS || state.sig.strokes.length >= SIG_MAX_STROKES) return;
    ev.preventDefault();
    var canvas = $("signature");
    var rect = canvas.getBoundingClientRect();
    if (!state.sig.points) {
      state.sig.width = Math.round(rect.width * 10) / 10;
      state.sig.height = Math.round(rect.height * 10) / 10;
      state.sig.t0 = ev.timeStamp;
    }
    try { canvas.setPointerCapture(ev.pointerId); } catch (e) { /* fine */ }
    state.sig.pointer = ev.pointerId;
    state.sig.strokes.push([sigPoint(ev)]);
    state.sig.points += 1;
    redrawSignature();
  }

  function sigMove(ev) {
    if (state.sig.pointer !== ev.pointerId) return;
    ev.preventDefault();
    var stroke = state.sig.strokes[state.sig.strokes.length - 1];
    var events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
    if (!events.length) events = [ev];
    for (var i = 0; i < events.length && state.sig.points < SIG_MAX_POINTS; i++) {
      var p = sigPoint(events[i]);
      var last = stroke[stroke.length - 1];
      if (Math.abs(p[0] - last[0]) < 1 && Math.abs(p[1] - last[1]) < 1) continue; // no new ink
      stroke.push(p);
      state.sig.points += 1;
    }
    redrawSignature();
  }

  function sigUp(ev) {
    if (state.sig.pointer !== ev.pointerId) return;
    state.sig.pointer = null;
    renderSignButton();
  }

  function renderSignButton() {
    var ready = !!state.review && $("review-confirm").checked && state.sig.points >= SIG_MIN_POINTS;
    $("review-sign").disabled = !ready;
  }

  function sendOnChannel(msg) {
    var ch = state.channel;
    if (!ch || ch.readyState !== "open") return false;
    try { ch.send(JSON.stringify(msg)); return true; } catch (e) { return false; }
  }

  function signReview() {
    var review = state.review;
    if (!review) return;
    if (!$("review-confirm").checked) { problem($("review-problem"), "review_need_confirm"); return; }
    if (state.sig.points < SIG_MIN_POINTS) { problem($("review-problem"), "review_need_signature"); return; }
    var btn = $("review-sign");
    btn.disabled = true;
    // Exactly the text this page displayed, read back from the page.
    sha256Hex($("review-text").textContent).then(function (digest) {
      if (state.review !== review) return;
      var sent = sendOnChannel({
        type: "statement_signed", id: review.id, sha256: digest,
        strokes: state.sig.strokes, width: state.sig.width, height: state.sig.height
      });
      if (!sent) { problem($("review-problem"), "review_not_sent"); renderSignButton(); return; }
      closeReview("review_sent");
    }, function () {
      problem($("review-problem"), "review_not_sent");
      renderSignButton();
    });
  }

  function declineReview() {
    var review = state.review;
    if (!review) return;
    if (!sendOnChannel({ type: "statement_declined", id: review.id })) {
      problem($("review-problem"), "review_not_sent");
      return;
    }
    closeReview("review_declined");
  }

  // --- "I can't talk freely" -------------------------------------------------------------

  function flag() {
    // Over the socket when it is up (held for the officer if away; never
    // echoed); otherwise (after the call, while reconnecting) over HTTP, so
    // the signal is never lost with the socket.
    if (!send({ type: "flag", kind: "cannot-talk" }) && LINK_PATH && window.fetch) {
      fetch(LINK_PATH + "/flag", { method: "POST", credentials: "same-origin", cache: "no-store", keepalive: true })
        .catch(function () { /* nothing more a page can do; the button can be pressed again */ });
    }
    var ack = $("flag-ack");
    setText(ack, "flag_sent");
    setAria(ack, "flag_sent_label");
    clearTimeout(state.flagTimer);
    state.flagTimer = setTimeout(function () {
      ack.textContent = "";
      ack.removeAttribute("data-i18n");
      ack.removeAttribute("data-i18n-aria");
      ack.removeAttribute("aria-label");
    }, 3000);
  }

  // --- endings ---------------------------------------------------------------------

  function showEnded(titleKey, bodyKey, canRejoin) {
    state.review = null; // a statement not signed in the call is not signed after it
    $("btn-review").hidden = true;
    setText($("ended-title"), titleKey);
    setText($("ended-body"), bodyKey);
    $("rejoin").hidden = !canRejoin;
    state.inCall = false;
    show("ended");
  }

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    var ws = state.ws;
    state.ws = null;
    state.wsOpen = false;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try { ws.close(1000); } catch (e) { /* closed already */ }
    }
  }

  function finish(kind) {
    if (state.finished && kind !== "ended") return;
    state.finished = true;
    closeSocket();
    teardownPeer();
    stopMedia();
    releaseWake();
    try { sessionStorage.removeItem(LANG_KEY); } catch (e) { /* fine */ }
    if (kind === "ended") showEnded("ended_title", "ended_body", false);
    else if (kind === "replaced") showEnded("replaced_title", "replaced_body", false);
    else showEnded("refused_title", "refused_body", false);
  }

  function rejoin() {
    state.finished = false;
    state.reconnectDelay = 1000;
    closeSocket();
    problem($("perm-problem"), null);
    setText($("perm-start"), "perm_start");
    show("permission");
  }

  /* Quick exit: end everything at once and put a neutral page in this page's
   * place in the tab's history (location.replace), so Back does not return here. */
  function quickExit() {
    if (state.quitting) return;
    state.quitting = true;
    if (state.ws && state.wsOpen) {
      try { state.ws.send(JSON.stringify({ type: "bye", reason: "quick-exit" })); } catch (e) { /* gone */ }
    }
    closeSocket();
    teardownPeer();
    stopMedia();
    releaseWake();
    try { sessionStorage.clear(); } catch (e) { /* fine */ }
    document.title = "";
    $("main").textContent = "";
    // replace: this page leaves the tab's history; the exit route answers with
    // Clear-Site-Data and a redirect to the neutral page.
    location.replace(LINK_PATH ? LINK_PATH + "/exit" : "/j/-/exit");
  }

  /* Agreeing claims the link for this phone (the deliberate action a link
   * preview never takes). A refusal (the link was claimed on another phone,
   * closed, expired) reloads the link, whose page then says why. */
  function agree() {
    var btn = $("consent-agree");
    if (btn.disabled) return;
    if (!LINK_PATH || !window.fetch) { show("permission"); return; }
    btn.disabled = true;
    problem($("consent-problem"), null);
    fetch(LINK_PATH + "/claim", { method: "POST", credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.ok) { show("permission"); return; }
      if (r.status >= 400 && r.status < 500) { location.replace(LINK_PATH); return; }
      problem($("consent-problem"), "consent_failed");
    }, function () {
      problem($("consent-problem"), "consent_failed");
    }).then(function () {
      btn.disabled = false;
    });
  }

  // --- keep the screen on while waiting and in the call ---------------------------

  function keepAwake() {
    if (!navigator.wakeLock || state.wakeLock) return;
    navigator.wakeLock.request("screen").then(function (lock) {
      state.wakeLock = lock;
      lock.addEventListener("release", function () { if (state.wakeLock === lock) state.wakeLock = null; });
    }, function () { /* not allowed or not supported */ });
  }

  function releaseWake() {
    var lock = state.wakeLock;
    state.wakeLock = null;
    if (lock) lock.release().catch(function () {});
  }

  // --- reconnecting after a network change ---------------------------------------
  // The phone moved from Wi-Fi to mobile data (or back), or the connection
  // failed: the old ICE candidate pair is dead. The officer's app makes the
  // offers, so the page asks it to restart ({type: "restart"}, no fields); the
  // app rebuilds the connection and sends a fresh offer, which this page
  // answers as usual. At most one request every 5 s; the app limits restarts too.
  var lastRestartAsk = 0;
  function askRestart() {
    if (!state.inCall || !state.pc) return false;
    var now = Date.now();
    if (now - lastRestartAsk < 5000) return false;
    lastRestartAsk = now;
    state.restartAsks = (state.restartAsks || 0) + 1;
    return send({ type: "restart" });
  }
  function networkChanged() {
    if (!state.inCall || !state.pc) return;
    setText($("call-status"), "call_reconnecting");
    askRestart();
  }
  window.addEventListener("online", networkChanged);
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener("change", networkChanged);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && (state.screen === "waiting" || state.screen === "call")) keepAwake();
  });

  // --- start -------------------------------------------------------------------------

  function loadSite() {
    if (!window.fetch) return;
    fetch("/web/site.json", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (site) {
      if (site && typeof site === "object") { state.site = site; renderWho(); }
    }).catch(function () { /* generic text stays */ });
  }

  function init() {
    state.lang = pickLanguage();
    applyLanguage();
    $("quick-exit").addEventListener("click", quickExit);
    $("consent-agree").addEventListener("click", agree);
    $("consent-decline").addEventListener("click", function () { show("decline"); });
    $("decline-back").addEventListener("click", function () { show("consent"); });
    $("perm-start").addEventListener("click", askMedia);
    $("perm-without").addEventListener("click", function () { stopMedia(); enterWaiting(); });
    $("btn-mute").addEventListener("click", toggleMute);
    $("btn-camera").addEventListener("click", toggleCamera);
    $("btn-chat").addEventListener("click", toggleChat);
    $("btn-end").addEventListener("click", endCall);
    $("tap-to-hear").addEventListener("click", playRemote);
    $("chat-form").addEventListener("submit", sendChat);
    $("chat-input").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $("chat-form").requestSubmit ? $("chat-form").requestSubmit() : sendChat(ev);
      }
    });
    $("flag").addEventListener("click", flag);
    $("rejoin").addEventListener("click", rejoin);
    var canvas = $("signature");
    canvas.addEventListener("pointerdown", sigDown);
    canvas.addEventListener("pointermove", sigMove);
    canvas.addEventListener("pointerup", sigUp);
    canvas.addEventListener("pointercancel", sigUp);
    $("review-confirm").addEventListener("change", function () { problem($("review-problem"), null); renderSignButton(); });
    $("review-sign").addEventListener("click", signReview);
    $("review-clear").addEventListener("click", clearSignature);
    $("review-decline").addEventListener("click", declineReview);
    $("review-back").addEventListener("click", function () { show("call"); });
    $("btn-review").addEventListener("click", function () { if (state.review) show("review"); });
    window.addEventListener("resize", function () { if (state.screen === "review") sizeSignature(); });
    setText($("perm-start"), "perm_start");
    renderCallControls();
    show("consent");
    loadSite();
  }

  // For the officer's side and tests: the same derivation, callable.
  window.EVR = {
    verificationCode: verificationCode, sdpFingerprint: sdpFingerprint, commitHash: commitHash,
    codeFrom: function () { return state.codeFrom || null; },
    signaturePoints: function () { return state.sig.points; },
    restartAsks: function () { return state.restartAsks || 0; }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
