"""The marketers' sign-in: a Cognito user pool with its hosted UI, federated to the company's
identity provider when ``ltv:identityProvider`` names one, and the two Lambdas the browser
routes need (lambdas/auth: sign-in and out; lambdas/authorizer: who is asking).

The app client is public (no secret: the browser's sign-in is started by our Lambda, which
keeps no secret either) and allows only the authorisation code grant; the sign-in Lambda
always sends a PKCE S256 challenge and redeems the code with its verifier. No implicit grant,
no client credentials, no password flows (the hosted UI signs people in, nobody else). Without
a federated provider the pool's own users sign in: created by an administrator (no self
sign-up), a strong password and a TOTP second factor required.

The callback and sign-out URLs are the API's own (``/auth/callback``, ``/auth/signed-out``),
built from the REST API's id rather than its deployment stage, so the pool does not depend on
the deployment that depends on the routes that depend on these Lambdas.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import DeploymentConfig
from infra.function import HandlerFunction

__all__ = ["AUTH_PATHS", "Login"]

AUTH_PATHS = ("login", "callback", "logout", "signed-out")
"""The routes under ``/auth`` (lambdas/auth); the only ones without an authoriser."""


class Login(Construct):
    """``user_pool``, ``client``, ``domain``, ``provider`` (or None); ``handler`` (sign-in
    routes) and ``authorizer_function`` with ``authorizer`` (the REQUEST authoriser)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 api: apigw.RestApi, stage: str) -> None:
        super().__init__(scope, construct_id)
        base = f"https://{api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{stage}"
        self.callback_url = f"{base}/auth/callback"
        self.signed_out_url = f"{base}/auth/signed-out"

        self.user_pool = cognito.UserPool(
            self, "UserPool", user_pool_name=f"{config.stackName}-users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)),  # federation updates it
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3)),
            mfa=cognito.Mfa.REQUIRED, mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=True, removal_policy=RemovalPolicy.RETAIN)
        self.provider = self._provider(config)

        if self.provider is not None:
            providers = [cognito.UserPoolClientIdentityProvider.custom(self.provider.provider_name)]
        else:
            providers = [cognito.UserPoolClientIdentityProvider.COGNITO]
        session = Duration.hours(config.sessionHours)
        self.client = self.user_pool.add_client(
            "WebClient", user_pool_client_name=f"{config.stackName}-web",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_password=False, user_srp=False, custom=False,
                                        admin_user_password=False),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False,
                                         client_credentials=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[self.callback_url], logout_urls=[self.signed_out_url]),
            supported_identity_providers=providers,
            id_token_validity=session, access_token_validity=session,
            # Cognito wants the refresh token to outlive the others; the callback discards it
            refresh_token_validity=session,
            prevent_user_existence_errors=True, enable_token_revocation=True)
        if self.provider is not None:
            self.client.node.add_dependency(self.provider)

        prefix = config.loginDomainPrefix or f"{config.stackName.lower()}-{Aws.ACCOUNT_ID}"
        self.domain = self.user_pool.add_domain(
            "HostedUi", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix))
        # The ID token's "iss", spelled out (the pool's ProviderURL attribute is documented
        # loosely): https://cognito-idp.<region>.<suffix>/<pool id>
        self.issuer = f"https://cognito-idp.{Aws.REGION}.{Aws.URL_SUFFIX}/{self.user_pool.user_pool_id}"

        self.handler = HandlerFunction(
            self, "AuthLambda", name="auth", config=config, timeout=Duration.seconds(15), memory_mb=256,
            description="ltv-forecast: sign-in and sign-out of the browser routes (hosted UI, PKCE)",
            environment={
                "LTV_AUTH_DOMAIN": self.domain.base_url(),
                "LTV_AUTH_CLIENT_ID": self.client.user_pool_client_id,
                "LTV_AUTH_REDIRECT_URI": self.callback_url,
                "LTV_AUTH_LOGOUT_URI": self.signed_out_url,
                "LTV_AUTH_IDENTITY_PROVIDER": self.provider.provider_name if self.provider else "",
                "LTV_AUTH_SESSION_SECONDS": str(config.sessionHours * 3600),
            })
        self.authorizer_function = HandlerFunction(
            self, "AuthorizerLambda", name="authorizer", config=config, timeout=Duration.seconds(10),
            memory_mb=256, description="ltv-forecast: verifies the signed-in person's Cognito ID token",
            environment={"LTV_AUTH_ISSUER": self.issuer,
                         "LTV_AUTH_CLIENT_ID": self.client.user_pool_client_id})
        # Not cached: each request is checked against the token's own expiry, and a
        # state-changing one against its Origin (neither is part of a cache key).
        self.authorizer = apigw.RequestAuthorizer(
            self, "Authorizer", handler=self.authorizer_function.function, identity_sources=[],
            results_cache_ttl=Duration.seconds(0), authorizer_name=f"{config.stackName}-signed-in")

    def _provider(self, config: DeploymentConfig) -> cognito.IUserPoolIdentityProvider | None:
        idp = config.identityProvider
        if idp is None:
            return None
        mapping = cognito.AttributeMapping(email=cognito.ProviderAttribute.other(idp.email_attribute))
        if idp.type == "SAML":
            return cognito.UserPoolIdentityProviderSaml(
                self, "Saml", user_pool=self.user_pool, name=idp.name, attribute_mapping=mapping,
                metadata=cognito.UserPoolIdentityProviderSamlMetadata.url(str(idp.metadataUrl)))
        # A dynamic reference: CloudFormation resolves the secret when it deploys; the template
        # holds only its name.
        secret = SecretValue.secrets_manager(str(idp.clientSecretName)).unsafe_unwrap()
        return cognito.UserPoolIdentityProviderOidc(
            self, "Oidc", user_pool=self.user_pool, name=idp.name, attribute_mapping=mapping,
            client_id=str(idp.clientId), client_secret=secret, issuer_url=str(idp.issuer),
            scopes=["openid", "email", "profile"],
            attribute_request_method=cognito.OidcAttributeRequestMethod.GET)

    @property
    def hosted_ui_url(self) -> str:
        return self.domain.base_url()
