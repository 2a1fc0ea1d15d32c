import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import type { EvictionCode, PushStream } from '../../services/cameras.service.ts';
import type { RecognitionResultMessage } from '../../sources/frame.ts';
import { TokenBucket } from '../../sources/rate-limiter.ts';
import { parseStreamMessage, type StreamLimits } from '../../sources/stream-protocol.ts';
import { sendProblem } from '../problem.ts';
import type { RouteModule } from '../server.ts';
import { keepAlive } from '../ws-heartbeat.ts';

/*
 * WebSocket /api/v1/stream?camera=ID (seed 003): a client (a browser kiosk) streams a push
 * camera's frames, as binary JPEG messages or as JSON `{"type":"frame","data":"<base64>",
 * "frame_id":…,"timestamp":…}`, and gets one `recognition_result` per processed frame. Frames go
 * to the pipeline, which keeps only the newest, so a client sending faster than frames are
 * processed gets results for fewer frames, never a growing delay. A malformed message gets
 * `{"type":"error","data":{"message","code"}}` and the socket stays open. Errors that end the
 * stream (unknown camera, replaced by another client…) send that message and then close with
 * 4000 + the HTTP status of the error (4404, 4409, …).
 */

/** Results are skipped, not queued, while this much is waiting to be sent to a slow client. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** A client over its rate limit is told so at most this often. */
const RATE_NOTICE_EVERY_MS = 1000;

const streamQuery = z.object({
  camera: z.string().min(1).max(64).describe('The push camera to stream; an unknown id creates a transient push camera (sources.stream.autoCreatePushCameras)'),
  key: z.string().optional().describe('The API key, for browsers that cannot set headers on a WebSocket'),
});

function errorText(code: string, message: string): string {
  return JSON.stringify({ type: 'error', data: { message, code } });
}

const EVICTION_CLOSE: Record<EvictionCode, number> = {
  replaced: 4409,
  camera_stopped: 4409,
  camera_deleted: 4404,
  server_closing: 1001,
};

export const streamRoutes: RouteModule = (app, { config, services }) => {
  const limits: StreamLimits = { maxImageBytes: config.vision.image.maxBytes, formats: config.vision.image.formats };
  const maxMessagesPerSecond = config.sources.stream.maxMessagesPerSecond;

  const stream = (socket: WebSocket, cameraId: string, remoteAddress: string): void => {
    const send = (text: string): void => {
      if (socket.readyState === socket.OPEN) socket.send(text);
    };
    let push: PushStream;
    try {
      push = services.cameras.openPushStream(cameraId, {
        remoteAddress,
        onEvicted: (code, message) => {
          send(errorText(code, message));
          socket.close(EVICTION_CLOSE[code], code);
        },
      });
    } catch (err) {
      const appError = err instanceof AppError ? err : new AppError('internal_error', 500, 'the stream could not be opened');
      send(errorText(appError.code, appError.message));
      socket.close(4000 + (appError.status % 1000), appError.code);
      return;
    }

    let skippedResults = 0;
    const unsubscribe = services.pipeline.onResult(cameraId, (result: RecognitionResultMessage) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        skippedResults++;
        return;
      }
      socket.send(JSON.stringify(result));
    });

    const bucket = new TokenBucket(maxMessagesPerSecond, maxMessagesPerSecond);
    let rateLimitedSinceNotice = 0;
    let lastNoticeMs = 0;
    socket.on('message', (data: RawData, isBinary: boolean) => {
      if (!bucket.take()) {
        push.countDropped('rate_limited');
        rateLimitedSinceNotice++;
        const now = Date.now();
        if (now - lastNoticeMs >= RATE_NOTICE_EVERY_MS) {
          lastNoticeMs = now;
          send(errorText('rate_limited', `more than ${maxMessagesPerSecond} messages a second: ${rateLimitedSinceNotice} dropped`));
          rateLimitedSinceNotice = 0;
        }
        return;
      }
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      const parsed = parseStreamMessage(bytes, isBinary, limits);
      switch (parsed.kind) {
        case 'frame':
          push.offer(parsed.bytes, { frameId: parsed.frameId, clientTimestamp: parsed.clientTimestamp });
          return;
        case 'ping':
          send(JSON.stringify({ type: 'pong', timestamp: Date.now(), skipped_results: skippedResults }));
          return;
        case 'error':
          push.countDropped('rejected');
          send(errorText(parsed.code, parsed.message));
          return;
      }
    });

    keepAlive(socket);

    socket.on('close', () => {
      unsubscribe();
      push.close();
    });
  };

  app.route({
    method: 'GET',
    url: '/api/v1/stream',
    config: { access: 'device' },
    schema: {
      tags: ['stream'],
      summary: 'WebSocket: stream a push camera’s frames, get recognition results',
      description:
        'Upgrade to a WebSocket. Send frames as binary JPEG messages or as JSON `{"type":"frame","data":"<base64>","frame_id":…,"timestamp":…}` ' +
        '(a `data:image/jpeg;base64,` prefix is tolerated); `{"type":"ping"}` gets a `pong`. Each processed frame is answered with ' +
        '`{"type":"recognition_result","camera_id","frame_id","faces":[{"track_id","person_id","name","confidence","bbox","is_unknown","quality","liveness"}],"timestamp","width","height"}`; ' +
        'frames arriving faster than the camera is processed are dropped (the newest wins). A malformed message gets `{"type":"error","data":{"message","code"}}` ' +
        '(codes invalid_json, invalid_message, unknown_type, invalid_base64, image_too_large, invalid_image, rate_limited) and the socket stays open. ' +
        'One client streams a camera at a time: a newer connection replaces the older, which gets the error `replaced` and is closed (4409). ' +
        'A stream to a camera that is not a push camera, is stopped, or is unknown (when transient cameras are off) gets an error and is closed with 4000 + the HTTP status. ' +
        'Browsers may pass the key as `?key=`.',
      querystring: streamQuery,
    },
    handler: async (_request, reply) => sendProblem(reply, 426, 'upgrade_required', 'this endpoint is a WebSocket: connect with Upgrade: websocket'),
    wsHandler: (socket, request) => {
      stream(socket, (request.query as z.infer<typeof streamQuery>).camera, request.ip);
    },
  });
};
