"use strict";
// The review page: sign in with Cognito (USER_PASSWORD_AUTH; a first sign-in with a temporary
// password chooses a new one), then settle the oldest pending check, then the next. The review
// API is this page's own origin; the token stays in this tab's sessionStorage and goes out as
// "Authorization: Bearer".
(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const TOKEN_KEY = "bincheck-review-token";
  const USER_KEY = "bincheck-review-user";
  const DIGIT_PAUSE_MS = 1200; // digits typed closer together make one number: 1, 2 -> 12
  const MAX_COUNT = 10000;
  const $ = (id) => document.getElementById(id);
  const views = ["sign-in", "new-password", "empty", "review"];
  let current = null; // the check on screen
  let count = null; // the count chosen for it
  let lastDigitAt = 0;
  let busy = false;
  let retryAction = null; // what Enter tries again after a network failure
  let challenge = null; // while Cognito asks for a new password: { username, shown, session }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  class CognitoError extends ApiError {
    constructor(status, kind, message) { super(status, message); this.kind = kind; }
  }

  function show(view) {
    for (const name of views) $(name).hidden = name !== view;
    const signedIn = view !== "sign-in" && view !== "new-password";
    $("sign-out").hidden = !signedIn;
    $("who").textContent = signedIn ? sessionStorage.getItem(USER_KEY) || "" : "";
  }

  function say(text, isError) {
    const box = $("message");
    box.textContent = text || "";
    box.hidden = !text;
    box.classList.toggle("error", Boolean(isError));
  }

  // --- sign-in ---------------------------------------------------------------------------
  // One call to Cognito's API; a refusal becomes a CognitoError naming Cognito's exception.
  async function cognito(action, body) {
    let response;
    try {
      response = await fetch(config.cognito_endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": "AWSCognitoIdentityProviderService." + action,
        },
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, "Cannot reach the sign-in service: check the network and try again.");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const kind = String(answer.__type || "").split("#").pop();
      const message = answer.message || answer.Message || kind || String(response.status);
      throw new CognitoError(response.status, kind, message);
    }
    return answer;
  }

  function signInFailure(error) {
    if (!(error instanceof CognitoError)) return error;
    return new ApiError(error.status, "Sign-in failed: " + error.message);
  }

  // Signed in, or the new-password challenge to answer first ({ username, shown, session }).
  async function signIn(username, password) {
    let answer;
    try {
      answer = await cognito("InitiateAuth", {
        AuthFlow: "USER_PASSWORD_AUTH",
        ClientId: config.client_id,
        AuthParameters: { USERNAME: username, PASSWORD: password },
      });
    } catch (error) {
      if (error.kind === "NotAuthorizedException" || error.kind === "UserNotFoundException") {
        throw new ApiError(401, "Wrong user name or password.");
      }
      throw signInFailure(error);
    }
    if (answer.ChallengeName === "NEW_PASSWORD_REQUIRED" && answer.Session) {
      const parameters = answer.ChallengeParameters || {};
      // Signed in by email: the answer goes under the user name, which Cognito gives here.
      const name = parameters.USER_ID_FOR_SRP || parameters.USERNAME || username;
      return { username: name, shown: username, session: answer.Session };
    }
    signedIn(answer, username);
    return null;
  }

  async function chooseNewPassword(password) {
    let answer;
    try {
      answer = await cognito("RespondToAuthChallenge", {
        ClientId: config.client_id,
        ChallengeName: "NEW_PASSWORD_REQUIRED",
        Session: challenge.session,
        ChallengeResponses: { USERNAME: challenge.username, NEW_PASSWORD: password },
      });
    } catch (error) {
      if (error.kind === "InvalidPasswordException") {
        throw new ApiError(400, "Choose another password: " + error.message);
      }
      if (error.kind === "NotAuthorizedException") {
        throw new ApiError(401, "The sign-in took too long: sign in again.");
      }
      throw signInFailure(error);
    }
    signedIn(answer, challenge.shown);
  }

  function signedIn(answer, username) {
    if (!answer.AuthenticationResult) {
      throw new ApiError(403, "This account needs " + (answer.ChallengeName || "another step") +
        " before it can review: ask your administrator.");
    }
    // The ID token: its aud is the app client, which the API's authorizer checks.
    sessionStorage.setItem(TOKEN_KEY, answer.AuthenticationResult.IdToken);
    sessionStorage.setItem(USER_KEY, username);
  }

  function askNewPassword(next) {
    challenge = next;
    show("new-password");
    say("Your password is temporary: choose a new one to finish signing in.");
    $("new-password-user").textContent = next.shown;
    $("new-password-username").value = next.shown;
    $("new-password-1").focus();
  }

  function signOut(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    current = null;
    retryAction = null;
    challenge = null;
    show("sign-in");
    say(reason, Boolean(reason));
    for (const id of ["password", "new-password-1", "new-password-2"]) $(id).value = "";
    ($("username").value ? $("password") : $("username")).focus();
  }

  // --- the review API --------------------------------------------------------------------
  async function api(method, path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new ApiError(401, "not signed in");
    const options = { method, headers: { Authorization: "Bearer " + token } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(config.api_base + path, options);
    } catch (error) {
      throw new ApiError(0, "Cannot reach the review API: check the network, then press Enter to try again.");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new ApiError(response.status, answer.error || answer.message || "HTTP " + response.status);
    }
    return answer;
  }

  function failed(error, retry) {
    if (error.status === 401) {
      signOut("Your sign-in has expired or was refused: sign in again.");
    } else if (error.status === 0) {
      say(error.message, true);
      retryAction = retry;
    } else {
      say(error.message, true);
    }
  }

  async function loadNext(notice) {
    busy = true;
    retryAction = null;
    try {
      const page = await api("GET", "checks?state=pending&limit=1");
      if (!page.checks.length) {
        current = null;
        show("empty");
        say(notice || "");
        return;
      }
      const check = await api("GET", "checks/" + encodeURIComponent(page.checks[0].id));
      present(check);
      say(notice || "");
    } catch (error) {
      failed(error, () => loadNext(notice));
    } finally {
      busy = false;
    }
  }

  // --- one check -------------------------------------------------------------------------
  function present(check) {
    current = check;
    count = null;
    lastDigitAt = 0;
    show("review");
    const photo = $("photo");
    $("photo-problem").hidden = true;
    photo.hidden = false;
    photo.src = check.photo_url;
    $("bin").textContent = check.bin_id;
    $("expected").textContent = String(check.expected_quantity);
    // probability: the model's probability of the expected quantity (what the status rests on).
    const p = check.probability == null ? "" : ", " + Math.round(check.probability * 100) + "% sure it is " + check.expected_quantity;
    $("verdict").textContent = check.status + ": counts " + check.predicted_count + p;
    $("captured").textContent = check.captured_at.replace("T", " ").replace(/\.\d+Z$/, " UTC");
    drawChart(check.probabilities || [], check.expected_quantity);
    drawCounts(check);
    showAnswer();
  }

  const SVG = "http://www.w3.org/2000/svg";
  function drawChart(probabilities, expected) {
    const chart = $("chart");
    chart.replaceChildren();
    const n = probabilities.length;
    if (!n) {
      chart.setAttribute("aria-label", "The model gave no distribution for this check");
      return;
    }
    const width = 300, height = 100, base = 84, slot = width / n;
    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    const top = Math.max(...probabilities);
    const labels = [];
    probabilities.forEach((value, i) => {
      const barHeight = Math.max(1, (value / Math.max(top, 1e-9)) * (base - 12));
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", String(i * slot + slot * 0.15));
      bar.setAttribute("y", String(base - barHeight));
      bar.setAttribute("width", String(slot * 0.7));
      bar.setAttribute("height", String(barHeight));
      const classes = ["bar"];
      if (value === top) classes.push("top");
      if (i === expected || (i === n - 1 && expected > i)) classes.push("expected");
      bar.setAttribute("class", classes.join(" "));
      const tip = document.createElementNS(SVG, "title");
      const name = i === n - 1 ? i + " or more" : String(i);
      tip.textContent = name + ": " + (value * 100).toFixed(1) + "%";
      bar.appendChild(tip);
      chart.appendChild(bar);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", String(i * slot + slot / 2));
      label.setAttribute("y", String(height - 2));
      label.textContent = i === n - 1 ? i + "+" : String(i);
      chart.appendChild(label);
      if (value === top) {
        const share = document.createElementNS(SVG, "text");
        share.setAttribute("x", String(i * slot + slot / 2));
        share.setAttribute("y", String(base - barHeight - 3));
        share.textContent = Math.round(value * 100) + "%";
        chart.appendChild(share);
      }
      labels.push(name + " " + Math.round(value * 100) + "%");
    });
    chart.setAttribute("aria-label", "Model's distribution: " + labels.join(", ") +
      "; the expected quantity is marked orange");
  }

  // 0..9 (or a little past the model's range), and the expected quantity when it lies beyond:
  // one click either way; any other count is typed.
  function drawCounts(check) {
    const most = Math.min(15, Math.max(9, (check.max_count || 0) + 3));
    const counts = $("counts");
    counts.replaceChildren();
    const values = [];
    for (let n = 0; n <= most; n++) values.push(n);
    if (check.expected_quantity > most) values.push(check.expected_quantity);
    for (const n of values) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(n);
      button.dataset.count = String(n);
      button.setAttribute("aria-pressed", "false");
      if (n === check.expected_quantity) {
        button.classList.add("expected");
        button.title = "the expected quantity";
      }
      counts.appendChild(button);
    }
  }

  function choose(value) {
    count = value;
    showAnswer();
  }

  // The backend takes CONFIRMED only for a count unlike the expected one, FALSE_ALARM only
  // for the same count: the resolution follows from the count.
  function resolution() {
    return count === current.expected_quantity ? "FALSE_ALARM" : "CONFIRMED";
  }

  function showAnswer() {
    for (const button of $("counts").children) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.count) === count));
    }
    const answer = $("answer");
    answer.className = "";
    $("confirm").disabled = count === null;
    if (count === null) {
      answer.textContent = "Type or pick the count (digits typed together make one number).";
    } else if (resolution() === "FALSE_ALARM") {
      answer.className = "false-alarm";
      answer.textContent = count + " counted, as expected: FALSE ALARM. Enter to confirm.";
    } else {
      answer.className = "confirmed";
      answer.textContent = count + " counted, not the expected " + current.expected_quantity +
        ": CONFIRMED. Enter to confirm.";
    }
  }

  async function settle() {
    if (!current || count === null || busy) return;
    busy = true;
    retryAction = null;
    $("confirm").disabled = true;
    const check = current;
    const body = { reviewed_count: count, resolution: resolution() };
    let notice;
    try {
      const result = await api("POST", "checks/" + encodeURIComponent(check.id) + "/review", body);
      const settled = result.check;
      notice = "Settled " + settled.bin_id + ": " + settled.reviewed_count + " counted, " +
        settled.resolution.replace("_", " ") + ".";
    } catch (error) {
      busy = false;
      if (error.status === 409) {
        notice = "Someone else settled " + check.bin_id + " first (" + error.message + "). Here is the next one.";
      } else {
        $("confirm").disabled = false;
        failed(error, settle);
        return;
      }
    }
    busy = false;
    await loadNext(notice);
  }

  // --- events ----------------------------------------------------------------------------
  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("sign-in-button");
    button.disabled = true;
    say("Signing in...");
    try {
      const next = await signIn($("username").value.trim(), $("password").value);
      $("password").value = "";
      if (next) askNewPassword(next);
      else await loadNext();
    } catch (error) {
      say(error.message, true);
      $("password").value = "";
      $("password").focus();
    } finally {
      button.disabled = false;
    }
  });
  $("new-password").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = $("new-password-1").value;
    if ($("new-password-2").value !== password) {
      say("The two passwords differ: repeat the new password exactly.", true);
      $("new-password-2").value = "";
      $("new-password-2").focus();
      return;
    }
    const button = $("new-password-button");
    button.disabled = true;
    say("Setting your password...");
    try {
      await chooseNewPassword(password);
      challenge = null;
      $("new-password-1").value = $("new-password-2").value = "";
      await loadNext();
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        signOut(error.message); // this sign-in is over: start again
      } else if (error.status === 0) {
        say(error.message, true); // both fields kept: Enter tries again
        $("new-password-2").focus();
      } else {
        say(error.message, true);
        $("new-password-1").value = $("new-password-2").value = "";
        $("new-password-1").focus();
      }
    } finally {
      button.disabled = false;
    }
  });
  $("new-password-cancel").addEventListener("click", () => signOut(""));
  $("sign-out").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", () => loadNext());
  $("confirm").addEventListener("click", settle);
  $("counts").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) { lastDigitAt = 0; choose(Number(button.dataset.count)); }
  });
  $("photo").addEventListener("error", () => {
    $("photo").hidden = true;
    $("photo-problem").hidden = false;
    $("photo-problem").textContent = "The photo could not be loaded (its link may have expired: press R to reload).";
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const reviewing = !$("review").hidden;
    if (event.key === "Enter" && retryAction && !busy) {
      event.preventDefault();
      const retry = retryAction;
      retryAction = null;
      retry();
      return;
    }
    if (!$("empty").hidden && (event.key === "r" || event.key === "R")) {
      loadNext();
      return;
    }
    if (!reviewing) return;
    if (/^[0-9]$/.test(event.key)) {
      event.preventDefault();
      const now = Date.now();
      const joined = count !== null && now - lastDigitAt < DIGIT_PAUSE_MS ? count * 10 + Number(event.key) : Number(event.key);
      lastDigitAt = now;
      choose(joined <= MAX_COUNT ? joined : Number(event.key));
    } else if (event.key === "Backspace" && count !== null) {
      event.preventDefault();
      choose(count >= 10 ? Math.floor(count / 10) : null);
      lastDigitAt = Date.now();
    } else if (event.key === "Enter") {
      event.preventDefault();
      settle();
    } else if (event.key === "r" || event.key === "R") {
      loadNext();
    }
  });

  if (sessionStorage.getItem(TOKEN_KEY)) {
    loadNext();
  } else {
    signOut("");
  }
})();
