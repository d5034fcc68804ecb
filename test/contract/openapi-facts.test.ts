import { describe, expect, it } from 'vitest';
import { contractDifferences, projectContract, type Contract, type JsonObject } from './openapi-facts.ts';

/** A tiny upstream spec in the shape of the CFS one: an operation whose response `$ref`s a schema with a nested one. */
const upstreamSpec = (): JsonObject => ({
  openapi: '3.0.2',
  paths: {
    '/v3/things/{id}': {
      get: {
        summary: 'Get a thing',
        responses: {
          '200': { description: 'The thing', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          '404': { $ref: '#/components/responses/NotFound' },
        },
      },
    },
  },
  components: {
    responses: { NotFound: { description: 'No such thing', content: { 'application/problem+json': { schema: { type: 'object' } } } } },
    schemas: {
      Thing: {
        description: 'A thing',
        type: 'object',
        required: ['name', 'state'],
        properties: {
          name: { type: 'string', example: 'x1' },
          state: { type: 'string', enum: ['pending', 'complete'] },
          size: { type: 'integer', minimum: 0 },
          part: { $ref: '#/components/schemas/Part' },
        },
        additionalProperties: false,
      },
      Part: { type: 'object', properties: { id: { type: 'string', format: 'uuid' } } },
      Unused: { type: 'string' },
    },
  },
});

const KEYS = [
  { method: 'get', path: '/v3/things/{id}', status: '200' },
  { method: 'get', path: '/v3/things/{id}', status: '404' },
];

describe('projectContract', () => {
  it('keeps the facts of the responses asked for and the schemas they reach, without the text', () => {
    // Act
    const contract = projectContract(upstreamSpec(), KEYS);
    // Assert
    expect(contract.paths['/v3/things/{id}']?.get?.responses).toEqual({
      '200': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
      '404': { content: { 'application/problem+json': { schema: { type: 'object' } } } },
    });
    expect(Object.keys(contract.components.schemas)).toEqual(['Part', 'Thing']);
    expect(contract.components.schemas.Thing).toEqual({
      type: 'object',
      required: ['name', 'state'],
      properties: {
        name: { type: 'string' },
        state: { type: 'string', enum: ['pending', 'complete'] },
        size: { type: 'integer', minimum: 0 },
        part: { $ref: '#/components/schemas/Part' },
      },
      additionalProperties: false,
    });
  });
});

describe('contractDifferences', () => {
  it('finds none between an upstream spec and the contract projected from it, and counts what it checked', () => {
    // Arrange
    const contract = projectContract(upstreamSpec(), KEYS);
    // Act
    const result = contractDifferences(contract, upstreamSpec());
    // Assert
    expect(result).toEqual({ differences: [], operations: 2, schemas: 2 });
  });

  it('reports a required field, an enum value and a type that differ, each on its JSON path', () => {
    // Arrange
    const contract = projectContract(upstreamSpec(), KEYS);
    const upstream = upstreamSpec() as { components: { schemas: Record<string, JsonObject & { properties: Record<string, JsonObject> }> } };
    upstream.components.schemas.Thing!.required = ['name', 'state', 'size'];
    upstream.components.schemas.Thing!.properties.state!.enum = ['pending', 'running', 'complete'];
    upstream.components.schemas.Part!.properties.id!.type = 'integer';
    // Act
    const { differences } = contractDifferences(contract, upstream as unknown as JsonObject);
    // Assert
    expect(differences).toEqual([
      { path: '$.components.schemas.Thing.required', message: 'the contract lacks "size"' },
      { path: '$.components.schemas.Thing.properties.state.enum', message: 'the contract lacks "running"' },
      { path: '$.components.schemas.Part.properties.id.type', message: 'contract "string", upstream "integer"' },
    ]);
  });

  it('follows a $ref on either side, so an inlined schema equal to the referenced one is no difference', () => {
    // Arrange
    const contract = projectContract(upstreamSpec(), KEYS);
    contract.components.schemas.Thing!.properties = {
      ...(contract.components.schemas.Thing!.properties as JsonObject),
      part: { type: 'object', properties: { id: { type: 'string', format: 'date-time' } } },
    };
    // Act
    const { differences } = contractDifferences(contract, upstreamSpec());
    // Assert
    expect(differences).toEqual([
      { path: '$.components.schemas.Thing.properties.part.properties.id.format', message: 'contract "date-time", upstream "uuid"' },
    ]);
  });

  it('reports a property, a status and an operation the upstream spec does not have', () => {
    // Arrange
    const contract: Contract = projectContract(upstreamSpec(), KEYS);
    (contract.components.schemas.Part!.properties as JsonObject).tag = { type: 'string' };
    contract.paths['/v3/things/{id}']!.get!.responses['409'] = { content: {} };
    contract.paths['/v3/things'] = { post: { responses: { '201': { content: {} } } } };
    // Act
    const { differences } = contractDifferences(contract, upstreamSpec());
    // Assert
    expect(differences).toEqual([
      { path: "$.components.schemas.Part.properties.tag", message: 'upstream has no such property' },
      { path: "$.paths['/v3/things/{id}'].get.responses['409']", message: 'upstream has no 409 response for GET /v3/things/{id}' },
      { path: "$.paths['/v3/things'].post.responses['201']", message: 'upstream has no path /v3/things' },
    ]);
  });
});
