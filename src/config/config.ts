import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * The one configuration tree. Every field has a one-line doc and a default; unknown keys are
 * rejected. Loaded once at start from an optional JSON file and FACEGATE_* environment
 * variables (see loadConfig), then passed down: nothing else reads the environment.
 */

const imageLimitsSchema = z.strictObject({
  /** Largest encoded image accepted, in bytes. */
  maxBytes: z.number().int().positive().default(15 * 1024 * 1024),
  /** Largest decoded image accepted, in pixels (width × height); guards against decompression bombs. */
  maxPixels: z.number().int().positive().default(40_000_000),
  /** Largest side the pipeline works on, in pixels; larger images are scaled down after decoding. */
  maxSidePx: z.number().int().positive().default(1920),
  /** Accepted encoded formats, as sharp names them. */
  formats: z.array(z.enum(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif'])).default(['jpeg', 'png', 'webp']),
});

const qualitySchema = z.strictObject({
  /** Smallest face accepted for recognition or enrollment: the shorter side of its box, in pixels. */
  minFaceSizePx: z.number().positive().default(48),
  /** Lowest sharpness accepted (variance of the Laplacian on a 112-px grey face crop). */
  minSharpness: z.number().nonnegative().default(15),
  /** Darkest mean face brightness accepted, 0..255. */
  minBrightness: z.number().min(0).max(255).default(30),
  /** Brightest mean face brightness accepted, 0..255. */
  maxBrightness: z.number().min(0).max(255).default(210),
  /** Lowest face contrast accepted (standard deviation of grey levels, 0..255). */
  minContrast: z.number().min(0).max(255).default(18),
  /** Largest |yaw| accepted for recognition, in degrees (estimates run low at large angles: 40 refuses 87% of |yaw| ≥ 60°). */
  maxYawDeg: z.number().min(0).max(90).default(40),
  /** Largest |pitch| accepted for recognition, in degrees. */
  maxPitchDeg: z.number().min(0).max(90).default(25),
});

const visionSchema = z.strictObject({
  /**
   * Which face engine runs: 'onnx' (fr_detect + fr_landmark + fr_feature, the default, chosen by
   * measurement), 'human' (Human's BlazeFace + mesh + faceres), or 'human-fr' (Human's BlazeFace +
   * mesh for detection and landmarks, fr_feature for the embedding).
   */
  engine: z.enum(['onnx', 'human', 'human-fr']).default('onnx'),
  /** Worker threads running the engine; each holds its own single-threaded model sessions. */
  workers: z.number().int().min(1).max(64).default(availableParallelism()),
  /** Folder holding the faceplugin ONNX models (installed by `npm install`). */
  modelsDir: z.string().default('models/faceplugin'),
  /** Most faces reported per image. */
  maxFaces: z.number().int().min(1).max(100).default(20),
  /**
   * Images whose larger side exceeds this get an extra tiled detector pass for small faces when the
   * caller asks for it (uploaded photos do, camera frames don't); 0 = never. In pixels.
   */
  smallFaceTilingAboveSidePx: z.number().int().min(0).default(960),
  /** Detector confidence below which a detection is dropped; unset = the engine's calibrated default. */
  minFaceScore: z.number().min(0).max(1).optional(),
  /** Liveness score (0..1) below which a face is treated as a spoof. */
  livenessThreshold: z.number().min(0).max(1).default(0.2),
  /** Jobs allowed to wait for a worker before new ones are refused as overloaded. */
  maxQueue: z.number().int().min(1).default(64),
  /** A job taking longer than this is failed and its worker replaced, in milliseconds. */
  jobTimeoutMs: z.number().int().positive().default(30_000),
  image: imageLimitsSchema.default(imageLimitsSchema.parse({})),
  quality: qualitySchema.default(qualitySchema.parse({})),
});

const identitySchema = z.strictObject({
  /**
   * One-to-one verification: cosine similarity at or above this means "same person". Unset = the
   * value `facegate eval` calibrated for the engine's embedding model (see calibratedThresholds).
   */
  verifyThreshold: z.number().min(-1).max(1).optional(),
  /**
   * One-to-many search: the best person must reach this cosine similarity to be named. Unset = the
   * calibrated value for the embedding model; it is stricter than verification, because a search
   * gives an impostor as many chances as there are people enrolled.
   */
  searchThreshold: z.number().min(-1).max(1).optional(),
  /** The best person must lead the runner-up person by this much cosine similarity, else the answer is "ambiguous". */
  minMargin: z.number().min(0).max(1).default(0.05),
  /** How a person's templates become one score: their best template, or the mean of their k best. */
  scoring: z.enum(['best', 'mean-top-k']).default('best'),
  /** k for scoring = "mean-top-k". */
  topK: z.number().int().min(1).max(20).default(3),
  /** Templates retrieved per search before they are grouped per person. */
  searchK: z.number().int().min(1).max(200).default(20),
  /** Refuse a face whose liveness is below vision.livenessThreshold ("spoof_suspected") when recognising. */
  requireLiveness: z.boolean().default(true),
  /** "cosine" (gallery search, the default) or "svm" (a classifier trained on the gallery, see POST /api/v1/system/train-model). */
  classifier: z.enum(['cosine', 'svm']).default('cosine'),
});

const gallerySchema = z.strictObject({
  /** A model's index switches from exact search to HNSW above this many templates (exact search over 50k takes ≈1.5 ms). */
  hnswAboveTemplates: z.number().int().min(0).default(50_000),
  /**
   * Store HNSW vectors as coordinates in a subspace learnt from the gallery (fr_feature uses ≈180
   * of its 512 dimensions): same answers, ≈40 % of the memory and distance work. Off: whole vectors.
   */
  hnswSubspace: z.boolean().default(true),
  /**
   * Candidates the HNSW search keeps (ef). Recall falls as a gallery grows while ef stays put
   * (production graph, fr_feature people: recall@1 0.987 at 100k and 0.895 at 300k with 128;
   * 0.950 / 0.975 at 300k with 256 / 512, for ≈2× / 3.5× the search time), so a large gallery
   * wants a larger value. Applies to a saved index at the next start (it is not part of the graph).
   * Unset: DEFAULT_HNSW_PARAMS' (128).
   */
  hnswExpansionSearch: z.number().int().min(16).max(4096).optional(),
  /** Save the in-memory index under dataDir/gallery this often (it is rebuilt from the store when missing or out of step), in milliseconds. */
  saveEveryMs: z.number().int().min(1000).default(60_000),
});

const urlFetchSchema = z.strictObject({
  /** Largest image fetched from a URL, in bytes. */
  maxBytes: z.number().int().positive().default(15 * 1024 * 1024),
  /** Give up on a URL after this long, in milliseconds. */
  timeoutMs: z.number().int().positive().default(10_000),
  /** Redirects followed at most (each target is checked again). */
  maxRedirects: z.number().int().min(0).max(10).default(3),
  /** Allow URLs that resolve to private, loopback or link-local addresses (off: blocks SSRF into your network). */
  allowPrivateNetworks: z.boolean().default(false),
  /** Content types accepted from a URL. */
  contentTypes: z.array(z.string()).default(['image/jpeg', 'image/png', 'image/webp']),
});

const serverSchema = z.strictObject({
  /** Address the HTTP server listens on. */
  host: z.string().default('0.0.0.0'),
  /** TCP port of the HTTP server. */
  port: z.number().int().min(0).max(65535).default(8080),
  /** Log level of the structured (pino) log. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const databaseSchema = z.strictObject({
  /** PostgreSQL connection URL (postgres://…); unset = the embedded SQLite file under dataDir. Also read from DATABASE_URL. */
  url: z.string().optional(),
  /** Largest number of pooled PostgreSQL connections. */
  poolSize: z.number().int().min(1).max(100).default(10),
});

const privacySchema = z.strictObject({
  /** Store aligned face thumbnails and snapshots; false = Facegate keeps no face images at all, only embeddings. */
  storeImages: z.boolean().default(true),
});

const webhookUrl = z
  .string()
  .refine((u) => URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol), 'must be an http:// or https:// URL');

const webhookSchema = z.strictObject({
  /** Where events are POSTed (http or https). */
  url: webhookUrl,
  /** Event types sent to this URL, or "*" for all. */
  events: z.union([z.literal('*'), z.array(z.string()).min(1)]).default('*'),
  /** Key of the HMAC-SHA256 signature in X-Facegate-Signature (sha256=<hex of the raw body>). */
  secret: z.string().min(8),
  /** Attempts per event before it is given up (retries back off exponentially, with jitter). */
  maxAttempts: z.number().int().min(1).max(20).default(5),
  /** Give up on one attempt after this long, in milliseconds. */
  timeoutMs: z.number().int().positive().default(10_000),
  /** Events waiting for this URL at most; beyond that the oldest are dropped (and counted). */
  maxQueue: z.number().int().min(1).default(1000),
});

const mqttSchema = z.strictObject({
  /** Broker URL (mqtt://, mqtts://, ws://, wss://); unset = MQTT off. */
  url: z
    .string()
    .refine((u) => URL.canParse(u) && ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:'].includes(new URL(u).protocol), 'must be an mqtt://, mqtts://, ws:// or wss:// URL')
    .optional(),
  /** Topics are <topicPrefix>/<camera>/<event>. */
  topicPrefix: z.string().min(1).default('facegate'),
  /** Event types published, or "*" for all. */
  events: z.union([z.literal('*'), z.array(z.string()).min(1)]).default('*'),
  /** MQTT quality of service of the published messages. */
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(0),
  /** Broker user name, when it asks for one. */
  username: z.string().optional(),
  /** Broker password. */
  password: z.string().optional(),
  /** Messages kept while the broker is unreachable; beyond that the oldest are dropped (and counted). */
  maxQueue: z.number().int().min(1).default(1000),
});

const eventsSchema = z.strictObject({
  /** Events kept for polling (GET /api/v1/events?after=…): the newest this many survive, across restarts. */
  ringSize: z.number().int().min(100).default(10_000),
  /** URLs that receive events as signed POSTs. */
  webhooks: z.array(webhookSchema).default([]),
  /** Publishing events to an MQTT broker (Home Assistant, Frigate, Node-RED). */
  mqtt: mqttSchema.default(mqttSchema.parse({})),
});

const realtimeSchema = z.strictObject({
  /** Most frames processed per second per camera, unless the camera sets its own; 0 = no limit (newer frames replace older ones either way). */
  defaultMaxFps: z.number().min(0).max(240).default(15),
  /** Frames of one camera being analysed at once (detection runs in parallel, tracking stays in frame order); 0 = one per vision worker. */
  framesInFlight: z.number().int().min(0).max(16).default(0),
  /** A frame older than this when its turn comes is dropped as stale, in milliseconds (from when the server received it). */
  maxFrameAgeMs: z.number().int().positive().default(2000),
  /** An unknown track stable this long is offered registration (unknown_person_detected with show_registration_dialog), in milliseconds. */
  askAfterStableMs: z.number().int().min(0).default(1500),
  /** After a "no" to registration, the same track is not asked again for this long, in milliseconds. */
  askAgainAfterMs: z.number().int().min(0).default(60_000),
  /** Without frames, a camera's tracks are aged (and leave) on this tick, in milliseconds. */
  idleTickMs: z.number().int().positive().default(250),
  /** The face tracker (src/domain/tracker.ts); unset fields keep its documented defaults. */
  tracker: z
    .strictObject({
      /** A detection continues a track when its box overlaps the predicted box at least this much (IoU). */
      iouMatchMin: z.number().gt(0).max(1).optional(),
      /** An embedding less similar than this to the track's vetoes a box match (cosine). */
      appearanceMinSimilarity: z.number().min(-1).max(1).optional(),
      /** An embedding this similar re-attaches a missing track without box overlap (cosine). */
      reattachMinSimilarity: z.number().min(-1).max(1).optional(),
      /** A track not seen for this long has left (person_left_area), in milliseconds. */
      leftAfterMs: z.number().int().positive().optional(),
      /** Motion at or under this (box sides per second) counts as still. */
      stableMotionMaxPerS: z.number().min(0).optional(),
      /** A track still for this long is "stable", in milliseconds. */
      stableAfterMs: z.number().int().min(0).optional(),
      /** Most tracks per camera. */
      maxTracks: z.number().int().min(1).max(256).optional(),
    })
    .default({}),
  /** When a track is embedded again (src/domain/tracker.ts EmbeddingPolicy); unset fields keep its defaults. */
  embedding: z
    .strictObject({
      /** A track without a settled identity is re-embedded at most this often, in milliseconds. */
      reembedIntervalMs: z.number().int().min(0).optional(),
      /** A settled track is re-checked this often, in milliseconds. */
      settledReembedIntervalMs: z.number().int().min(0).optional(),
      /** A settled track with this many embeddings gets no more. */
      maxEmbeddingsPerTrack: z.number().int().min(1).optional(),
    })
    .default({}),
  /** The identity vote per track (src/domain/track-identity.ts); unset fields keep its defaults. */
  vote: z
    .strictObject({
      /** Views needed before the majority names anyone (or nobody). */
      minVotes: z.number().int().min(1).max(12).optional(),
      /** The winner's share of the vote weight, > 0.5. */
      minShare: z.number().gt(0.5).max(1).optional(),
    })
    .default({}),
});

/** What a camera id may look like: it appears in URLs, MQTT topics (facegate/<camera>/<event>) and logs. */
export const CAMERA_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const cameraSchema = z
  .strictObject({
    /** Stable id: letters, digits, '_', '-', '.'; at most 64 characters. */
    id: z.string().regex(CAMERA_ID_PATTERN, 'letters, digits, "_", "-" and "." only (at most 64, starting with a letter or digit)'),
    /** Display name; default the id. */
    name: z.string().min(1).max(200).optional(),
    /** rtsp (url rtsp:// or rtsps://), mjpeg (url http:// or https://), v4l2 (device /dev/videoN), file (path under sources.allowedFileRoots), push (frames sent by a client over WebSocket). */
    kind: z.enum(['rtsp', 'mjpeg', 'v4l2', 'file', 'push']),
    url: z.string().optional(),
    device: z.string().optional(),
    path: z.string().optional(),
    /** Most frames processed per second; unset = realtime.defaultMaxFps. */
    maxFps: z.number().min(0.1).max(240).optional(),
    /** Started at boot (ffmpeg cameras). */
    enabled: z.boolean().default(true),
    /** file cameras: start over at the end instead of ending. */
    loop: z.boolean().default(false),
    /** Several nodes (issue 9): the cluster.nodeId that runs this camera; unset = any node. */
    node: z.string().min(1).max(200).optional(),
  })
  .superRefine((camera, ctx) => {
    const needs = { rtsp: 'url', mjpeg: 'url', v4l2: 'device', file: 'path', push: null } as const;
    const field = needs[camera.kind];
    if (field && !camera[field]) ctx.addIssue({ code: 'custom', path: [field], message: `a ${camera.kind} camera needs ${field}` });
  });

const sourcesSchema = z.strictObject({
  /** The ffmpeg binary (Debian's ffmpeg package) that reads rtsp, mjpeg, v4l2 and file cameras. */
  ffmpegPath: z.string().min(1).default('ffmpeg'),
  /** Folders file cameras may read videos from; unset = <dataDir>/videos. A path outside them (after following links) is refused. */
  allowedFileRoots: z.array(z.string().min(1)).optional(),
  /** ffmpeg scales camera frames wider than this down, in pixels. */
  maxWidthPx: z.number().int().min(64).max(7680).default(1280),
  /** ffmpeg's JPEG quantiser for camera frames: 2 (best) .. 31 (smallest). */
  jpegQuality: z.number().int().min(2).max(31).default(5),
  /** No frame from an ffmpeg camera for this long counts as a failure (ffmpeg is restarted), in milliseconds. */
  stallTimeoutMs: z.number().int().min(100).default(15_000),
  /** A stopping ffmpeg gets this long after SIGTERM before SIGKILL, in milliseconds. */
  stopTimeoutMs: z.number().int().min(100).default(3000),
  reconnect: z
    .strictObject({
      /** Wait before the first reconnect of a failed camera, in milliseconds; it doubles per failure (with jitter). */
      initialDelayMs: z.number().int().min(10).default(1000),
      /** Longest wait between reconnects, in milliseconds. */
      maxDelayMs: z.number().int().min(10).default(30_000),
      /** Consecutive failures after which a camera is stopped; 0 = keep trying forever. */
      maxAttempts: z.number().int().min(0).default(0),
    })
    .default({ initialDelayMs: 1000, maxDelayMs: 30_000, maxAttempts: 0 }),
  stream: z
    .strictObject({
      /** Messages one WebSocket client may send per second (burst: as many); more are dropped and counted. */
      maxMessagesPerSecond: z.number().int().min(1).max(1000).default(60),
      /** A stream to an unknown camera id creates a transient push camera (gone when the socket closes); false = register push cameras first (POST /api/v1/cameras). */
      autoCreatePushCameras: z.boolean().default(true),
    })
    .default({ maxMessagesPerSecond: 60, autoCreatePushCameras: true }),
});

const enrollmentAngleSchema = z.strictObject({
  /** front, left, right, up, down … (the events' angle_name; stored as the template's pose label, "front" as "frontal"). */
  name: z.string().min(1).max(40),
  /** Target yaw, degrees (> 0 = the subject turned to their own left). */
  yawDeg: z.number().min(-90).max(90),
  /** Target pitch, degrees (> 0 = looking up). */
  pitchDeg: z.number().min(-90).max(90),
  /** The pose counts as reached within this many degrees of the target, in yaw and in pitch. */
  toleranceDeg: z.number().positive().max(180),
  /** What the person is told. */
  instruction: z.string().min(1).max(200),
});

const enrollmentSchema = z.strictObject({
  /** The poses of guided capture, in order (seed 000's five by default). */
  angles: z
    .array(enrollmentAngleSchema)
    .min(1)
    .max(12)
    .default([
      { name: 'front', yawDeg: 0, pitchDeg: 0, toleranceDeg: 10, instruction: 'Look straight at the camera' },
      { name: 'left', yawDeg: 25, pitchDeg: 0, toleranceDeg: 12, instruction: 'Turn your head slightly to your left' },
      { name: 'right', yawDeg: -25, pitchDeg: 0, toleranceDeg: 12, instruction: 'Turn your head slightly to your right' },
      { name: 'up', yawDeg: 0, pitchDeg: 15, toleranceDeg: 10, instruction: 'Tilt your head slightly up' },
      { name: 'down', yawDeg: 0, pitchDeg: -15, toleranceDeg: 10, instruction: 'Tilt your head slightly down' },
    ]),
  /** Good frames captured per guided angle. */
  framesPerAngle: z.number().int().min(1).max(10).default(3),
  /** Guided capture: the face must hold the target pose this long before a frame is taken, in milliseconds. */
  holdMs: z.number().int().min(0).max(10_000).default(400),
  /** Guided capture: consecutive frames whose pose differs more than this (degrees) mean the head is still moving. */
  maxPoseStepDeg: z.number().positive().default(6),
  /** Templates kept per pose label (the best by quality, near-copies skipped). */
  templatesPerPose: z.number().int().min(1).max(10).default(2),
  /** An enrollment not finished this long after it started fails with reason "timeout", in milliseconds. */
  timeoutMs: z.number().int().min(1000).default(120_000),
  /** An enrollment that gets no frame for this long fails with reason "timeout", in milliseconds. */
  idleTimeoutMs: z.number().int().min(500).default(30_000),
  /** Liveness (0..1) below which a frame is not captured; unset = vision.livenessThreshold. */
  minLiveness: z.number().min(0).max(1).optional(),
  /** Every capture must be at least this similar (cosine) to the others' medoid; unset = the verification threshold. */
  consistencyMinSimilarity: z.number().min(-1).max(1).optional(),
  /** Enrollments under way at once (at most one per camera). */
  maxSessions: z.number().int().min(1).max(256).default(16),
  /** Finished enrollments stay readable (GET /api/v1/enrollments/{id}) this long, in milliseconds. */
  keepFinishedMs: z.number().int().min(0).default(600_000),
  /** The circular scan (seed 002): a yaw × pitch grid whose bins each keep their best frames. */
  scan: z
    .strictObject({
      /** Yaw bin edges, ascending, degrees. */
      yawEdgesDeg: z.array(z.number().min(-90).max(90)).min(2).default([-45, -25, -10, 10, 25, 45]),
      /** Pitch bin edges, ascending, degrees. */
      pitchEdgesDeg: z.array(z.number().min(-90).max(90)).min(2).default([-30, -10, 10, 30]),
      /** Frames kept (and embedded at the end) per bin: the best by quality. */
      keepPerBin: z.number().int().min(1).max(10).default(1),
      /** Bins that must hold a frame before the scan can complete (the frontal one always must). */
      minCoveredBins: z.number().int().min(1).default(3),
      /** Frames accepted per scan at most. */
      maxFrames: z.number().int().min(1).default(600),
    })
    .default({ yawEdgesDeg: [-45, -25, -10, 10, 25, 45], pitchEdgesDeg: [-30, -10, 10, 30], keepPerBin: 1, minCoveredBins: 3, maxFrames: 600 }),
  /**
   * Active liveness of guided capture: the landmarks of the turned poses must disagree with a flat
   * plane (homography residual relative to the face's spread) by at least this; 0 = off. On
   * Pointing'04 real head turns measured 0.13–0.23, the same photos warped flat 0.03–0.04 (npm run bench:enroll).
   */
  minParallax: z.number().min(0).max(1).default(0.08),
  /**
   * Extra templates made from each chosen frame (seed 002): "flip" (mirrored), "brighter", "darker"
   * (±30 %), "blur". Off by default: on Pointing'04 it lowered recall, the many templates per person
   * crowding identity.searchK so answers turned "ambiguous" (npm run bench:enroll).
   */
  augmentation: z.array(z.enum(['flip', 'brighter', 'darker', 'blur'])).max(4).default([]),
});

const timeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day HH:MM (24 h)');

function knownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const attendanceSchema = z.strictObject({
  /** Check people in from camera recognitions (the attendance API and manual marks work either way). */
  enabled: z.boolean().default(true),
  /** IANA time zone the attendance day, start time and reports follow, e.g. "Europe/Berlin". */
  timeZone: z.string().refine(knownTimeZone, 'an IANA time zone such as "Europe/Berlin"').default('UTC'),
  /** Local time at which a new attendance day starts (a 01:30 sighting before a 04:00 boundary counts for the day before). */
  dayBoundary: timeOfDay.default('04:00'),
  /** Local start of the working day; a check-in after it (plus lateAfterMin) is flagged late. */
  startTime: timeOfDay.default('09:00'),
  /** Minutes of grace after startTime before a check-in counts as late. */
  lateAfterMin: z.number().int().min(0).max(720).default(0),
  /** ISO weekdays (1 = Monday … 7 = Sunday) on which people who did not come count as absent. */
  workDays: z.array(z.number().int().min(1).max(7)).default([1, 2, 3, 4, 5]),
  /** Frames of a track that must carry the person's identity before they are checked in. */
  minAgreeingFrames: z.number().int().min(1).max(100).default(3),
  /** Similarity a check-in needs; unset = the search threshold in force. */
  minSimilarity: z.number().min(-1).max(1).optional(),
  /** A check-in needs a measured liveness score at or above vision.livenessThreshold. */
  requireLiveness: z.boolean().default(true),
  /** Keep the camera frame of each check-in (never when privacy.storeImages is false). */
  storeSnapshots: z.boolean().default(true),
  /** How often check-out times (the last sighting) are written, in milliseconds. */
  flushEveryMs: z.number().int().min(100).default(5000),
});

/** HTTP hardening (src/api/hardening.ts): CORS, rate limits, security headers, proxies. */
const securitySchema = z.strictObject({
  /** Browser origins (exact "https://host:port") allowed to call the API and open WebSockets cross-origin; empty = CORS closed. */
  corsOrigins: z.array(z.string().min(1)).default([]),
  /** Trust X-Forwarded-For/-Proto from a reverse proxy (true, or comma-separated proxy addresses/CIDRs); rate limits key on the client IP this yields. */
  trustProxy: z.union([z.boolean(), z.string().min(1)]).default(false),
  /** Content-Security-Policy sent with every answer except the /docs pages. */
  contentSecurityPolicy: z
    .string()
    .default("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"),
  rateLimit: z
    .strictObject({
      /** Rate limits on recognition, uploads and login; off only for benchmarks on a trusted network. */
      enabled: z.boolean().default(true),
      /** The window every limit below counts in, in milliseconds. */
      windowMs: z.number().int().min(1000).default(60_000),
      /** Recognition calls (recognize, verify, detect) one key may make per window. */
      recognitionPerKey: z.number().int().min(1).default(1200),
      /** Recognition calls one client IP may make per window (all its keys together). */
      recognitionPerIp: z.number().int().min(1).default(2400),
      /** Image uploads (faces, imports, enrollments) one key may make per window. */
      uploadPerKey: z.number().int().min(1).default(300),
      /** Image uploads one client IP may make per window. */
      uploadPerIp: z.number().int().min(1).default(600),
      /** Login attempts one client IP may make per window (lockout per user is the login's own rule). */
      loginPerIp: z.number().int().min(1).default(20),
    })
    .default({ enabled: true, windowMs: 60_000, recognitionPerKey: 1200, recognitionPerIp: 2400, uploadPerKey: 300, uploadPerIp: 600, loginPerIp: 20 }),
});

/** Audit, retention and encryption at rest (issue 8). */
const trustSchema = z.strictObject({
  /**
   * Key for embeddings at rest: 32 bytes as base64 or 64 hex digits (AES-256-GCM); unset = stored in
   * clear. Set it through the environment (FACEGATE_TRUST__EMBEDDING_KEY), not a file next to the data.
   */
  embeddingKey: z
    .string()
    .refine((k) => /^[0-9a-fA-F]{64}$/.test(k) || Buffer.from(k, 'base64').length === 32, 'must be 32 bytes: 64 hex digits or base64')
    .optional(),
  retention: z
    .strictObject({
      /** Recognition log rows are deleted after this many days; 0 = kept forever. */
      recognitionLogDays: z.number().min(0).default(30),
      /** Stored events (polling ring) are deleted after this many days; 0 = kept forever (the ring size still bounds them). */
      eventsDays: z.number().min(0).default(30),
      /** Unknown-face snapshots are deleted after this many days; 0 = kept forever. */
      snapshotsDays: z.number().min(0).default(7),
      /** How often the retention sweep runs, in milliseconds. */
      sweepEveryMs: z.number().int().min(1000).default(3_600_000),
    })
    .default({ recognitionLogDays: 30, eventsDays: 30, snapshotsDays: 7, sweepEveryMs: 3_600_000 }),
  /** SIGTERM: in-flight requests get this long to finish before connections are cut, in milliseconds. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
});

/** Several nodes on one PostgreSQL (issue 9). Runs only with database.url set; SQLite is one node. */
const clusterSchema = z.strictObject({
  /** This node's name: cameras are assigned to it and its leases carry it. Unset = "<hostname>:<server.port>". Unique per node. */
  nodeId: z.string().min(1).max(200).optional(),
  /** How long a camera lease lasts: a camera whose node stops renewing is taken over after at most this, in milliseconds. */
  leaseMs: z.number().int().min(500).default(15_000),
  /** Leases and the heartbeat are renewed this often, in milliseconds (well under leaseMs). */
  renewEveryMs: z.number().int().min(100).default(5_000),
  /** The gallery index is compared with the store (count + checksum) and repaired this often, in milliseconds; 0 = never. */
  checksumEveryMs: z.number().int().min(0).default(60_000),
  /** The LISTEN connection is reopened after a failure after this, then doubling up to reconnectMaxMs, in milliseconds. */
  reconnectMs: z.number().int().min(50).default(500),
  /** Longest wait between LISTEN reconnection attempts, in milliseconds. */
  reconnectMaxMs: z.number().int().min(50).default(10_000),
});

const uiSchema = z.strictObject({
  /** Serve the web UI (the static files built into web/dist) at `/`. */
  enabled: z.boolean().default(true),
  /** Folder of the built web UI, relative to the project. */
  root: z.string().default('web/dist'),
  /** How long a browser session lasts before signing in again, in hours. */
  sessionTtlHours: z.number().positive().max(24 * 90).default(12),
  /** Failed sign-ins in a row (per user, or per client address for key sign-ins) before a lockout. */
  maxFailedLogins: z.number().int().min(1).max(100).default(5),
  /** How long a lockout lasts, in minutes. */
  lockoutMinutes: z.number().positive().max(24 * 60).default(15),
});

export const configSchema = z.strictObject({
  /** Folder for the embedded database and other state. */
  dataDir: z.string().default('data'),
  database: databaseSchema.default(databaseSchema.parse({})),
  privacy: privacySchema.default(privacySchema.parse({})),
  server: serverSchema.default(serverSchema.parse({})),
  vision: visionSchema.default(visionSchema.parse({})),
  identity: identitySchema.default(identitySchema.parse({})),
  gallery: gallerySchema.default(gallerySchema.parse({})),
  urlFetch: urlFetchSchema.default(urlFetchSchema.parse({})),
  sources: sourcesSchema.default(sourcesSchema.parse({})),
  /** Cameras defined here are created (or updated) in the store at start; more can be added with POST /api/v1/cameras. */
  cameras: z.array(cameraSchema).default([]),
  realtime: realtimeSchema.default(realtimeSchema.parse({})),
  events: eventsSchema.default(eventsSchema.parse({})),
  /** Enrollment: guided multi-angle capture and the circular scan (issue 5). */
  enrollment: enrollmentSchema.default(enrollmentSchema.parse({})),
  attendance: attendanceSchema.default(attendanceSchema.parse({})),
  security: securitySchema.default(securitySchema.parse({})),
  trust: trustSchema.default(trustSchema.parse({})),
  cluster: clusterSchema.default(clusterSchema.parse({})),
  /** The web UI and its browser sign-in (users, sessions, lockout). */
  ui: uiSchema.default(uiSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type VisionConfig = Config['vision'];
export type QualityLimits = VisionConfig['quality'];
export type ImageLimits = VisionConfig['image'];
export type SourcesConfig = Config['sources'];
export type CameraConfig = Config['cameras'][number];
export type RealtimeConfig = Config['realtime'];
export type EventsConfig = Config['events'];
export type EnrollmentConfig = Config['enrollment'];
export type AttendanceConfig = Config['attendance'];
export type SecurityConfig = Config['security'];
export type TrustConfig = Config['trust'];
export type ClusterConfig = Config['cluster'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function snakeToCamel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

/** FACEGATE_* variables that are not config fields: the config file's path, `facegate user`'s password. */
const NOT_CONFIG_VARIABLES = new Set(['FACEGATE_CONFIG', 'FACEGATE_PASSWORD']);

/**
 * Turns FACEGATE_* variables into a partial config tree: `__` separates levels and each level is
 * UPPER_SNAKE for a camelCase key, so FACEGATE_VISION__MAX_FACES=5 sets vision.maxFaces.
 * PORT and DATABASE_URL are honoured as the usual shorthands.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, Json> {
  const tree: Record<string, Json> = {};
  const set = (path: string[], value: Json): void => {
    let node = tree;
    path.slice(0, -1).forEach((key) => {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, Json>;
    });
    node[path[path.length - 1]!] = value;
  };
  if (env.PORT) set(['server', 'port'], parseEnvValue(env.PORT));
  if (env.DATABASE_URL) set(['database', 'url'], env.DATABASE_URL);
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('FACEGATE_') || raw === undefined || NOT_CONFIG_VARIABLES.has(name)) continue;
    const path = name.slice('FACEGATE_'.length).split('__').map(snakeToCamel);
    if (path.some((p) => p === '')) continue;
    set(path, parseEnvValue(raw));
  }
  return tree;
}

function deepMerge(base: Record<string, Json>, over: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev, value)
        : value;
  }
  return out;
}

/** Validates a raw tree, turning zod's issues into one readable ConfigError. */
export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** A JSON config file; default $FACEGATE_CONFIG, else ./facegate.config.json when present. */
  file?: string;
  /** Highest-precedence overrides (CLI flags, tests). */
  overrides?: Record<string, unknown>;
}

/** Loads the effective config: defaults < file < environment < overrides. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.FACEGATE_CONFIG ?? (existsSync('facegate.config.json') ? 'facegate.config.json' : undefined);
  let fromFile: Record<string, Json> = {};
  if (file) {
    const path = resolve(file);
    try {
      fromFile = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Json>;
    } catch (err) {
      throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
    }
  }
  const merged = deepMerge(deepMerge(fromFile, configFromEnv(env)), (options.overrides ?? {}) as Record<string, Json>);
  return parseConfig(merged);
}

const SECRET_KEY = /(secret|password|token|key)$/i;

/** The config with secrets masked, for printing at start. */
export function maskedConfig(config: Config): unknown {
  const mask = (value: unknown, key: string): unknown => {
    // Lists of objects (events.webhooks) carry secrets too.
    if (Array.isArray(value)) return value.map((v) => mask(v, key));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mask(v, k)]));
    }
    if (typeof value !== 'string' || !value) return value;
    if (SECRET_KEY.test(key)) return '***';
    // A connection URL may carry a password: keep the host, hide the credentials.
    return key === 'url' ? value.replace(/\/\/([^@/]*)@/, '//***@') : value;
  };
  return mask(config, '');
}
