import { z } from 'zod';
import type { RouteModule } from '../server.ts';

/*
 * The optional SVM identity classifier: train it on the gallery (admin) and see what is in force.
 * Training answers with its cross-validation figures; identity.classifier = "svm" makes recognition
 * use it (with the cosine search as fallback).
 */

const gridPoint = z.object({
  kernel: z.enum(['linear', 'rbf']),
  C: z.number(),
  gamma: z.number().nullable(),
  accuracy: z.number().describe('cross-validated rank-1 accuracy, 0..1'),
});

const trainingReport = z.object({
  modelId: z.string().describe('the embedding model trained on'),
  trainedAt: z.number().describe('epoch ms'),
  durationMs: z.number(),
  people: z.number().int().describe('people (classes) trained on'),
  templates: z.number().int(),
  peopleLeftToCosine: z.number().int().describe('people with fewer than minTemplatesPerPerson faces: always decided by the cosine search'),
  minTemplatesPerPerson: z.number().int(),
  folds: z.number().int().describe('cross-validation folds'),
  chosen: gridPoint.describe('the grid point with the best cross-validated accuracy'),
  grid: z.array(gridPoint),
  acceptDecision: z
    .number()
    .nullable()
    .describe('SVM decision value at which it names a face (calibrated so ≤ 1% of faces of identities held out of training reach it); null = it always defers to cosine'),
  unknownSamples: z.number().int().describe('held-out-identity faces the accept decision was calibrated on'),
  templateSet: z.object({ count: z.number().int(), idHashXor: z.string() }),
});

const statusSchema = z.object({
  classifier: z.enum(['cosine', 'svm']).describe('identity.classifier in force'),
  trained: z.boolean(),
  stale: z.boolean().nullable().describe('faces were added or removed since training: train again'),
  report: trainingReport.nullable(),
});

export const classifierRoutes: RouteModule = (app, { services, config }) => {
  app.get(
    '/api/v1/system/model',
    {
      config: { access: 'operator' },
      schema: { tags: ['system'], summary: 'The SVM identity classifier: whether it is trained, in force and up to date', response: { 200: statusSchema } },
    },
    async () => ({ classifier: config.identity.classifier, ...(await services.classifier.status()) }),
  );

  app.post(
    '/api/v1/system/train-model',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['system'],
        summary: 'Train the SVM identity classifier on the gallery; answers with its cross-validation figures',
        description:
          'One-vs-rest SVM over the people with enough faces, C (and gamma for the RBF kernel) chosen by cross-validation, the accept threshold ' +
          'calibrated on identities held out of training. Without forceRetrain, a model that is up to date with the gallery is not retrained. ' +
          '409 not_enough_people when fewer than two people have enough faces.',
        body: z
          .strictObject({
            forceRetrain: z.boolean().optional().describe('retrain even when the model is up to date'),
            force_retrain: z.boolean().optional().describe('the same, as older clients spell it'),
          })
          // No body at all is fine: Fastify hands the schema null then.
          .nullish(),
        response: { 200: z.object({ retrained: z.boolean(), classifier: z.enum(['cosine', 'svm']), report: trainingReport }) },
      },
    },
    async (request) => {
      const force = request.body?.forceRetrain === true || request.body?.force_retrain === true;
      if (!force) {
        const status = await services.classifier.status();
        if (status.trained && status.stale === false && status.report) return { retrained: false, classifier: config.identity.classifier, report: status.report };
      }
      const report = await services.classifier.train();
      return { retrained: true, classifier: config.identity.classifier, report };
    },
  );
};
