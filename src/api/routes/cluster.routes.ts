import { z } from 'zod';
import type { RouteModule } from '../server.ts';

/** What GET /api/v1/system/cluster shows of this node (src/cluster's ClusterNode gives it). */
export interface ClusterStatusSource {
  status(): Promise<{
    nodeId: string;
    listening: boolean;
    reconnects: number;
    nodes: { nodeId: string; startedAt: number; lastSeen: number; alive: boolean }[];
    leases: { cameraId: string; nodeId: string; expiresAt: number }[];
    owned: string[];
    eventsRelayed: number;
    eventsNotified: number;
    decisionsForwarded: number;
    gallerySyncs: number;
    galleryRepairs: number;
  }>;
}

const clusterSchema = z.object({
  enabled: z.boolean().describe('False on SQLite (one node): the rest is then absent'),
  nodeId: z.string().optional(),
  listening: z.boolean().optional().describe('The LISTEN connection is up'),
  reconnects: z.number().optional(),
  gallerySize: z.number().describe("Templates in this node's index"),
  nodes: z.array(z.object({ nodeId: z.string(), startedAt: z.number(), lastSeen: z.number(), alive: z.boolean() })).optional(),
  leases: z.array(z.object({ cameraId: z.string(), nodeId: z.string(), expiresAt: z.number() })).optional(),
  owned: z.array(z.string()).optional().describe('Cameras this node runs'),
  eventsRelayed: z.number().optional().describe('Events of other nodes passed to this node’s clients'),
  eventsNotified: z.number().optional(),
  decisionsForwarded: z.number().optional(),
  gallerySyncs: z.number().optional(),
  galleryRepairs: z.number().optional(),
});

export const clusterRoutes: RouteModule = (app, deps) => {
  app.get(
    '/api/v1/system/cluster',
    {
      config: { access: 'operator' },
      schema: { tags: ['system'], summary: 'Several nodes on one PostgreSQL: this node, the others, camera leases', response: { 200: clusterSchema } },
    },
    async () => {
      const gallerySize = deps.services.gallery.size;
      const cluster = deps.services.cluster;
      if (!cluster) return { enabled: false, gallerySize };
      return { enabled: true, gallerySize, ...(await cluster.status()) };
    },
  );
};
